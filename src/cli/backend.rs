//! The secrets backend as the CLI sees it: the local vault under --base-dir, or the isopass
//! service the server config names (read-only: values are set in isopass itself).

use std::sync::Arc;

use super::Context;
use crate::crypto::SecretBytes;
use crate::secrets::{LocalVault, Provider, SecretsError};

/// The backend `config validate` and `doctor` resolve refs through. With the local backend and
/// no master key, a provider that answers every ref with what to do; an isopass service that
/// cannot be reached or refuses the token is an error.
pub fn open(ctx: &Context) -> Result<Arc<dyn Provider>, String> {
    let secrets = &ctx.settings.settings.secrets;
    if secrets.is_isopass() {
        let (isopass, _) = crate::secrets::isopass::Isopass::start(&secrets.isopass()?, false)?;
        return Ok(isopass);
    }
    if !crate::secrets::local::key_file_exists(&ctx.paths.key_file)? {
        return Ok(Arc::new(NoVault { base: ctx.paths.base.display().to_string() }));
    }
    let vault = LocalVault::open(&ctx.paths.secrets_dir, &ctx.paths.key_file).map_err(|e| e.to_string())?;
    Ok(Arc::new(vault))
}

/// The refusal for a local-vault verb when the server config names isopass.
pub fn local_only(ctx: &Context, verb: &str) -> Result<(), String> {
    if !ctx.settings.settings.secrets.is_isopass() {
        return Ok(());
    }
    Err(format!(
        "`vigocli secrets {verb}` works on the local vault, but the server config uses the isopass backend: \
         manage values in isopass itself (the server notices a change within one poll; \
         `vigocli secrets notify KEY` rolls one out now)"
    ))
}

/// Stands in when there is no vault: any `secret:` ref is an error that says so.
struct NoVault {
    base: String,
}

impl NoVault {
    fn err(&self) -> SecretsError {
        SecretsError::Backend(format!(
            "no vault was found under --base-dir {} (run `vigocli secrets init`, or point --base-dir at the server's state)",
            self.base
        ))
    }
}

impl Provider for NoVault {
    fn get(&self, _: &str) -> Result<SecretBytes, SecretsError> {
        Err(self.err())
    }
    fn version(&self, _: &str) -> Result<String, SecretsError> {
        Err(self.err())
    }
    fn list(&self) -> Result<Vec<String>, SecretsError> {
        Err(self.err())
    }
}

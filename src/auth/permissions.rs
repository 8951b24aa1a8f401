//! Roles and the named permissions they hold. Every admin API route declares exactly one
//! permission; `Role::allows` is the one table deciding it (docs/SECURITY.md shows it).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Viewer,
    Compliance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Server health, epochs and config source.
    HealthRead,
    EnvoysRead,
    EnvoysRevoke,
    /// The list of enrollment tokens (ids, bindings, dates; never the tokens).
    TokensRead,
    TokensCreate,
    /// Create, list and revoke API tokens.
    ApiTokensManage,
    ConfigPublish,
    SecretsRotate,
    RunsRead,
    /// The raw audit log.
    AuditRead,
    /// Certificate state, TLS reloads and CA rollover.
    TlsManage,
}

impl Permission {
    #[cfg(test)]
    pub const ALL: &'static [Permission] = &[
        Permission::HealthRead,
        Permission::EnvoysRead,
        Permission::EnvoysRevoke,
        Permission::TokensRead,
        Permission::TokensCreate,
        Permission::ApiTokensManage,
        Permission::ConfigPublish,
        Permission::SecretsRotate,
        Permission::RunsRead,
        Permission::AuditRead,
        Permission::TlsManage,
    ];

    /// The name used in docs, errors and audit rows.
    pub fn name(self) -> &'static str {
        match self {
            Permission::HealthRead => "health.read",
            Permission::EnvoysRead => "envoys.read",
            Permission::EnvoysRevoke => "envoys.revoke",
            Permission::TokensRead => "tokens.read",
            Permission::TokensCreate => "tokens.create",
            Permission::ApiTokensManage => "api_tokens.manage",
            Permission::ConfigPublish => "config.publish",
            Permission::SecretsRotate => "secrets.rotate",
            Permission::RunsRead => "runs.read",
            Permission::AuditRead => "audit.read",
            Permission::TlsManage => "tls.manage",
        }
    }
}

impl Role {
    #[cfg(test)]
    pub const ALL: &'static [Role] = &[Role::Admin, Role::Viewer, Role::Compliance];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            "compliance" => Some(Role::Compliance),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Compliance => "compliance",
        }
    }

    /// Admins may do everything; viewers read everything; compliance reads fleet state but
    /// not the raw audit log.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        let reads = matches!(p, HealthRead | EnvoysRead | TokensRead | RunsRead);
        match self {
            Role::Admin => true,
            Role::Viewer => reads || p == AuditRead,
            Role::Compliance => reads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_is_denied_audit_read_and_only_admins_write() {
        assert!(Role::Compliance.allows(Permission::RunsRead));
        assert!(!Role::Compliance.allows(Permission::AuditRead));
        assert!(Role::Viewer.allows(Permission::AuditRead));
        for p in [
            Permission::EnvoysRevoke,
            Permission::TokensCreate,
            Permission::ConfigPublish,
            Permission::SecretsRotate,
            Permission::ApiTokensManage,
            Permission::TlsManage,
        ] {
            assert!(Role::Admin.allows(p));
            assert!(!Role::Viewer.allows(p), "{}", p.name());
            assert!(!Role::Compliance.allows(p), "{}", p.name());
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = Permission::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
    }
}

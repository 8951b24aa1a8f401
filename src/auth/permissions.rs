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
    /// Who am I, my own sessions and API tokens (every role).
    SelfRead,
    /// End my own sessions, make and revoke my own API tokens (every role; a token never
    /// exceeds its owner's role).
    SelfManage,
    /// Web users: create, change role, disable, delete.
    UsersManage,
    /// Everyone's sessions: list and end them.
    SessionsManage,
    /// The live config tree (names `secret:` refs, never values), recent publishes, errors.
    ConfigRead,
    /// Secret names, sizes, and when and by whom each was set (never a value).
    SecretsList,
    /// The console's `/security` page: listeners, certificates, logins, dependencies.
    SecurityRead,
    /// `GET /metrics` (Prometheus): counts and timings, never a name or value of a secret.
    MetricsRead,
    /// Ad-hoc tasks: run a command on envoys (`vigocli task run`).
    TasksRun,
}

impl Permission {
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
        Permission::SelfRead,
        Permission::SelfManage,
        Permission::UsersManage,
        Permission::SessionsManage,
        Permission::ConfigRead,
        Permission::SecretsList,
        Permission::SecurityRead,
        Permission::MetricsRead,
        Permission::TasksRun,
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
            Permission::SelfRead => "self.read",
            Permission::SelfManage => "self.manage",
            Permission::UsersManage => "users.manage",
            Permission::SessionsManage => "sessions.manage",
            Permission::ConfigRead => "config.read",
            Permission::SecretsList => "secrets.list",
            Permission::SecurityRead => "security.read",
            Permission::MetricsRead => "metrics.read",
            Permission::TasksRun => "tasks.run",
        }
    }
}

impl Role {
    #[cfg(test)]
    pub const ALL: &'static [Role] = &[Role::Admin, Role::Viewer, Role::Compliance];
    /// Every role, the one that may do most first.
    pub const ALL_BY_RANK: &'static [Role] = &[Role::Admin, Role::Viewer, Role::Compliance];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            "compliance" => Some(Role::Compliance),
            _ => None,
        }
    }

    /// Roles are nested: compliance sees less than a viewer, who sees less than an admin.
    pub fn rank(self) -> u8 {
        match self {
            Role::Compliance => 0,
            Role::Viewer => 1,
            Role::Admin => 2,
        }
    }

    /// The lesser of two roles (an API token never exceeds its owner).
    pub fn min(self, other: Role) -> Role {
        if self.rank() <= other.rank() {
            self
        } else {
            other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Compliance => "compliance",
        }
    }

    /// Admins may do everything; viewers read everything but metrics; compliance reads fleet
    /// state but not the raw audit log. Metrics are admin-only: a scraper is a machine, and
    /// a person reads the same facts in the console.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        let reads = matches!(
            p,
            HealthRead
                | EnvoysRead
                | TokensRead
                | RunsRead
                | SelfRead
                | SelfManage
                | ConfigRead
                | SecretsList
                | SecurityRead
        );
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
            Permission::UsersManage,
            Permission::SessionsManage,
            Permission::MetricsRead,
            Permission::TasksRun,
        ] {
            assert!(Role::Admin.allows(p));
            assert!(!Role::Viewer.allows(p), "{}", p.name());
            assert!(!Role::Compliance.allows(p), "{}", p.name());
        }
    }

    /// Each role holds everything the role below it holds.
    #[test]
    fn roles_are_nested() {
        for p in Permission::ALL {
            assert!(!Role::Compliance.allows(*p) || Role::Viewer.allows(*p), "{}", p.name());
            assert!(!Role::Viewer.allows(*p) || Role::Admin.allows(*p), "{}", p.name());
        }
        assert_eq!(Role::Admin.min(Role::Viewer), Role::Viewer);
        assert_eq!(Role::Compliance.min(Role::Admin), Role::Compliance);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = Permission::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// The table in docs/OPERATIONS.md ("Roles and permissions") is the code's table: every
    /// permission listed once, with exactly the roles that hold it.
    #[test]
    fn the_documented_table_is_the_code() {
        let docs = include_str!("../../docs/OPERATIONS.md");
        let section = docs.split("### Roles and permissions").nth(1).expect("the section exists");
        let section = section.split("\n## ").next().unwrap_or_default();
        let mut seen = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            let p = Permission::ALL
                .iter()
                .find(|p| p.name() == name)
                .unwrap_or_else(|| panic!("{name} is not a permission"));
            for (role, cell) in
                [(Role::Admin, cells[2]), (Role::Viewer, cells[3]), (Role::Compliance, cells[4])]
            {
                assert_eq!(role.allows(*p), cell == "yes", "{name} for {}", role.name());
            }
            seen.push(*p);
        }
        assert_eq!(seen.len(), Permission::ALL.len(), "every permission is in the table once");
    }
}

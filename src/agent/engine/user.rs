//! The user and group executors. Passwords arrive as resolved plaintext and are hashed here
//! to SHA-512-crypt; an existing `$6$` hash is checked by re-hashing with its own salt, so an
//! unchanged password is not rewritten. `groups` and `members`, when given, are the exact list.

use super::attrs::Attrs;
use super::userdb::{self, Db};
use super::{Ctx, Done, Outcome};
use crate::crypto::{self, SecretString};

fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if crate::util::users::is_account_name(name) {
        Ok(())
    } else {
        Err(format!("{kind} name {name:?} is not a valid account name"))
    }
}

/// A passwd field may not hold the separators of the file.
fn field(name: &str, value: String) -> Result<String, String> {
    if value.contains([':', '\n']) {
        return Err(format!("{name} may not contain ':' or a newline"));
    }
    Ok(value)
}

fn parse_id(a: &Attrs, name: &str) -> Result<Option<u32>, String> {
    a.string(name)?
        .map(|s| s.trim().parse::<u32>().map_err(|_| format!("{name} {s:?} must be a number")))
        .transpose()
}

/// True when `hash` is a `$6$` hash of `password` with the default rounds.
fn hash_matches(password: &SecretString, hash: &str) -> bool {
    let Some(rest) = hash.strip_prefix("$6$") else { return false };
    let Some((salt, _)) = rest.split_once('$') else { return false };
    if salt.starts_with("rounds=") {
        return false; // re-hash at the default rounds
    }
    crypto::sha512_crypt(password.expose().as_bytes(), salt)
        .is_ok_and(|h| crypto::ct_eq(h.as_bytes(), hash.as_bytes()))
}

fn set_members(db: &mut Db, group: &str, members: Vec<String>) {
    if let Some(i) = db.group.find(group) {
        let row = &mut db.group.rows[i];
        row.resize(4, String::new());
        row[3] = members.join(",");
    }
    db.sync_gshadow(group);
}

fn finish(db: &Db, ctx: &Ctx, lines: Vec<String>) -> Outcome {
    if lines.is_empty() {
        return Ok(Done::unchanged());
    }
    if !ctx.noop {
        db.save()?;
    }
    Ok(Done::changed(lines.join("\n")))
}

pub(crate) fn user(a: &Attrs, ctx: &Ctx) -> Outcome {
    let name = a.required("username")?;
    check_name("user", &name)?;
    let present = a.ensure_present(&["present"], &["absent"])?;
    let mut db = Db::open(ctx.root, ctx.noop)?;
    let existing = db.passwd.get(&name).cloned();
    let mut lines = Vec::new();
    if !present {
        let Some(old) = existing else { return Ok(Done::unchanged()) };
        db.passwd.remove(&name);
        db.shadow.remove(&name);
        let groups: Vec<String> =
            db.group.rows.iter().filter(|r| r.len() > 3).map(|r| r[0].clone()).collect();
        for g in groups {
            let row = db.group.get(&g).cloned().unwrap_or_default();
            let m = userdb::members(&row);
            if m.contains(&name) {
                set_members(&mut db, &g, m.into_iter().filter(|x| *x != name).collect());
            }
        }
        // The user's private group goes with it, as userdel does, when nobody else uses it.
        let private = db.group.get(&name).cloned();
        let primary_elsewhere =
            |gid: &str| db.passwd.rows.iter().any(|r| r.get(3).map(String::as_str) == Some(gid));
        if let Some(g) = private.filter(|g| g.get(2) == old.get(3) && userdb::members(g).is_empty()) {
            if !primary_elsewhere(&g[2]) {
                db.group.remove(&name);
                db.sync_gshadow(&name);
            }
        }
        return finish(&db, ctx, vec![format!("removed user {name}")]);
    }

    let want_uid = parse_id(a, "uid")?;
    if let Some(u) = want_uid {
        if let Some(other) =
            db.passwd.rows.iter().find(|r| r.len() > 2 && r[2] == u.to_string() && r[0] != name)
        {
            return Err(format!("uid {u} already belongs to user {}", other[0]).into());
        }
    }
    let uid = match (want_uid, &existing) {
        (Some(u), _) => u,
        (None, Some(row)) => row[2].parse().map_err(|_| format!("{name} has a malformed passwd entry"))?,
        (None, None) => userdb::free_id(db.passwd.ids(), None)?,
    };
    let gid = match (a.string("gid")?, &existing) {
        (Some(g), _) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => db.group.get(&g).and_then(|r| r.get(2)?.parse().ok()).ok_or_else(|| {
                format!("group {g:?} does not exist (add a group resource and depend on it)")
            })?,
        },
        (None, Some(row)) => row[3].parse().map_err(|_| format!("{name} has a malformed passwd entry"))?,
        (None, None) => match db.group.get(&name) {
            Some(r) => r[2].parse().map_err(|_| format!("group {name} has a malformed entry"))?,
            None => {
                let gid = userdb::free_id(db.group.ids(), Some(uid))?;
                db.group.put(vec![name.clone(), "x".into(), gid.to_string(), String::new()]);
                db.sync_gshadow(&name);
                lines.push(format!("created group {name} (gid {gid})"));
                gid
            }
        },
    };
    let old = |i: usize| existing.as_ref().and_then(|r| r.get(i).cloned());
    let comment = field("comment", a.string("comment")?.or(old(4)).unwrap_or_default())?;
    let home = field("home", a.string("home")?.or(old(5)).unwrap_or_else(|| format!("/home/{name}")))?;
    let shell = field("shell", a.string("shell")?.or(old(6)).unwrap_or_else(|| "/bin/sh".into()))?;
    let row = vec![name.clone(), "x".into(), uid.to_string(), gid.to_string(), comment, home, shell];
    match &existing {
        None => lines.push(format!("created user {name} (uid {uid}, gid {gid})")),
        Some(cur) => {
            for (i, label) in [(2, "uid"), (3, "gid"), (4, "comment"), (5, "home"), (6, "shell")] {
                if cur.get(i) != row.get(i) {
                    lines.push(format!(
                        "{label} {:?} -> {:?}",
                        cur.get(i).cloned().unwrap_or_default(),
                        row[i]
                    ));
                }
            }
        }
    }
    db.passwd.put(row);

    let password = a.secret("password")?;
    let mut shadow = db.shadow.get(&name).cloned().unwrap_or_default();
    if shadow.is_empty() {
        shadow = vec![name.clone(), "!".into(), userdb::today(), "0".into(), "99999".into(), "7".into()];
        shadow.resize(9, String::new());
    }
    if let Some(pw) = &password {
        if !hash_matches(pw, &shadow[1]) {
            let salt = crypto::sha512_crypt_salt().map_err(|e| e.to_string())?;
            shadow[1] = crypto::sha512_crypt(pw.expose().as_bytes(), &salt).map_err(|e| e.to_string())?;
            shadow.resize(shadow.len().max(3), String::new());
            shadow[2] = userdb::today();
            lines.push("password changed".into());
        }
    }
    db.shadow.put(shadow);

    if let Some(want) = a.list("groups")? {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for g in &want {
            if db.group.find(g).is_none() {
                return Err(
                    format!("group {g:?} does not exist (add a group resource and depend on it)").into()
                );
            }
        }
        let names: Vec<String> = db.group.rows.iter().filter(|r| r.len() > 2).map(|r| r[0].clone()).collect();
        for g in names {
            let mut m = userdb::members(db.group.get(&g).map(Vec::as_slice).unwrap_or_default());
            let is_member = m.contains(&name);
            if want.contains(&g) && !is_member {
                m.push(name.clone());
                added.push(g.clone());
                set_members(&mut db, &g, m);
            } else if !want.contains(&g) && is_member {
                m.retain(|x| *x != name);
                removed.push(g.clone());
                set_members(&mut db, &g, m);
            }
        }
        if !added.is_empty() {
            lines.push(format!("added to groups {}", added.join(", ")));
        }
        if !removed.is_empty() {
            lines.push(format!("removed from groups {}", removed.join(", ")));
        }
    }
    finish(&db, ctx, lines)
}

pub(crate) fn group(a: &Attrs, ctx: &Ctx) -> Outcome {
    let name = a.required("groupname")?;
    check_name("group", &name)?;
    let present = a.ensure_present(&["present"], &["absent"])?;
    let mut db = Db::open(ctx.root, ctx.noop)?;
    let existing = db.group.get(&name).cloned();
    if !present {
        let Some(row) = existing else { return Ok(Done::unchanged()) };
        if let Some(u) = db.passwd.rows.iter().find(|r| r.len() > 3 && Some(&r[3]) == row.get(2)) {
            return Err(
                format!("group {name} is the primary group of user {}; refusing to remove it", u[0]).into()
            );
        }
        db.group.remove(&name);
        db.sync_gshadow(&name);
        return finish(&db, ctx, vec![format!("removed group {name}")]);
    }
    let want_gid = parse_id(a, "gid")?;
    let mut lines = Vec::new();
    let created = existing.is_none();
    let mut row = match existing {
        Some(r) => r,
        None => {
            let gid = match want_gid {
                Some(g) => g,
                None => userdb::free_id(db.group.ids(), None)?,
            };
            lines.push(format!("created group {name} (gid {gid})"));
            vec![name.clone(), "x".into(), gid.to_string(), String::new()]
        }
    };
    row.resize(4, String::new());
    if let Some(g) = want_gid.filter(|g| row[2] != g.to_string()) {
        if db.group.rows.iter().any(|r| r.len() > 2 && r[2] == g.to_string() && r[0] != name) {
            return Err(format!("gid {g} already belongs to another group").into());
        }
        if !created {
            lines.push(format!("gid {} -> {g}", row[2]));
        }
        row[2] = g.to_string();
    }
    if let Some(want) = a.list("members")? {
        let have = userdb::members(&row);
        if have != want {
            if !created {
                lines.push(format!("members {:?} -> {:?}", have.join(","), want.join(",")));
            }
            row[3] = want.join(",");
        }
    }
    db.group.put(row);
    db.sync_gshadow(&name);
    finish(&db, ctx, lines)
}

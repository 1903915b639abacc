//! Identifiers: app path ids, instance ids and task ids, in Marathon's forms.
//!
//! - An [`AppId`] is an absolute path such as `/prod/web`.
//! - An [`InstanceId`] is `<safe path>.instance-<uuid>` (`prod_web.instance-…`);
//!   it stays stable across relaunches.
//! - A [`TaskId`] is `<instance id>._app.<incarnation>`; each relaunch of an
//!   instance gets the next incarnation.

use std::fmt;

/// Why a path id is invalid (the messages follow Marathon's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// A segment does not match the id pattern.
    Pattern,
    /// The last segment is a reserved word.
    Reserved,
    /// The id is empty or the root.
    Empty,
}

impl IdError {
    /// Marathon's error text for this problem.
    pub fn message(&self) -> &'static str {
        match self {
            IdError::Pattern => {
                r"must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$'"
            }
            IdError::Reserved => {
                "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
            }
            IdError::Empty => "must not be empty",
        }
    }
}

const RESERVED: &[&str] = &["restart", "tasks", "versions", ".", ".."];

/// An app's absolute path id, canonical (no `.`/`..`, no trailing slash).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(String);

fn valid_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// One path segment: dot-separated labels, or `.`/`..`.
fn valid_segment(seg: &str) -> bool {
    seg == "." || seg == ".." || seg.split('.').all(valid_label)
}

impl AppId {
    /// Parses an app id given relative to the root group (`web` and `/web`
    /// are the same app). `.` and `..` segments are resolved.
    pub fn parse(raw: &str) -> Result<AppId, IdError> {
        let trimmed = raw.trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(IdError::Empty);
        }
        if !segments.iter().all(|s| valid_segment(s)) {
            return Err(IdError::Pattern);
        }
        if segments.last().is_some_and(|s| RESERVED.contains(s)) {
            return Err(IdError::Reserved);
        }
        let mut canonical: Vec<&str> = Vec::with_capacity(segments.len());
        for seg in segments {
            match seg {
                "." => {}
                ".." => {
                    canonical.pop();
                }
                s => canonical.push(s),
            }
        }
        if canonical.is_empty() {
            return Err(IdError::Empty);
        }
        Ok(AppId(format!("/{}", canonical.join("/"))))
    }

    /// An id from text known to be canonical (built by Drover itself).
    pub(crate) fn from_canonical(path: String) -> AppId {
        debug_assert!(AppId::parse(&path).is_ok_and(|id| id.0 == path), "{path}");
        AppId(path)
    }

    /// The absolute path, e.g. `/prod/web`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with `/` replaced by `_` and no leading slash (`prod_web`),
    /// as used in instance and task ids.
    pub fn safe_path(&self) -> String {
        self.0.trim_start_matches('/').replace('/', "_")
    }

    /// The app id a safe path came from (`prod_web` → `/prod/web`).
    pub fn from_safe_path(safe: &str) -> Option<AppId> {
        AppId::parse(&safe.replace('_', "/")).ok()
    }

    /// True when `self` is `group` or lies below it (`/a/b` is in `/a`).
    pub fn is_in_group(&self, group: &str) -> bool {
        let g = group.trim_end_matches('/');
        g.is_empty()
            || self.0 == g
            || self.0.strip_prefix(g).is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stable instance id: `<safe path>.instance-<uuid>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

const INSTANCE_MARK: &str = ".instance-";
const APP_MARK: &str = "._app.";

impl InstanceId {
    /// The instance id of `app` with the given uuid text.
    pub fn new(app: &AppId, uuid: &str) -> InstanceId {
        InstanceId(format!("{}{INSTANCE_MARK}{uuid}", app.safe_path()))
    }

    /// The smallest id of `app`'s instances: every instance id of the app
    /// starts with it, so it bounds a range scan.
    pub(crate) fn lower_bound(app: &AppId) -> InstanceId {
        InstanceId(format!("{}{INSTANCE_MARK}", app.safe_path()))
    }

    /// The smallest id of the instances of apps under `group` (e.g.
    /// `/drover.jobs`): every such id starts with it.
    pub(crate) fn group_lower_bound(group: &AppId) -> InstanceId {
        InstanceId(format!("{}_", group.safe_path()))
    }

    /// Parses an instance id.
    pub fn parse(raw: &str) -> Option<InstanceId> {
        let (safe, uuid) = raw.split_once(INSTANCE_MARK)?;
        if uuid.is_empty() || uuid.contains('.') || AppId::from_safe_path(safe).is_none() {
            return None;
        }
        Some(InstanceId(raw.to_owned()))
    }

    /// The app this instance belongs to.
    pub fn app_id(&self) -> Option<AppId> {
        AppId::from_safe_path(self.0.split_once(INSTANCE_MARK)?.0)
    }

    /// The id of this instance's task of the given incarnation.
    pub fn task_id(&self, incarnation: u32) -> TaskId {
        TaskId(format!("{}{APP_MARK}{incarnation}", self.0))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Mesos task id: `<instance id>._app.<incarnation>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(String);

impl TaskId {
    /// Wraps any task id text (Mesos may report ids that are not ours).
    pub fn from_raw(raw: impl Into<String>) -> TaskId {
        TaskId(raw.into())
    }

    /// The instance and incarnation, when this is one of Drover's task ids.
    pub fn parse(&self) -> Option<(InstanceId, u32)> {
        let (instance, incarnation) = self.0.rsplit_once(APP_MARK)?;
        let incarnation: u32 = incarnation.parse().ok()?;
        Some((InstanceId::parse(instance)?, incarnation))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_made_absolute_and_canonical() {
        assert_eq!(AppId::parse("web").unwrap().as_str(), "/web");
        assert_eq!(AppId::parse("/prod/web/").unwrap().as_str(), "/prod/web");
        assert_eq!(AppId::parse("/prod/./x/../web").unwrap().as_str(), "/prod/web");
        assert_eq!(AppId::parse("/a.b-c/d9").unwrap().as_str(), "/a.b-c/d9");
    }

    #[test]
    fn invalid_app_ids_are_rejected_with_marathon_reasons() {
        for bad in ["/Web", "/a_b", "/-a", "/a-", "/a..b", "/a b", "/ä"] {
            assert_eq!(AppId::parse(bad), Err(IdError::Pattern), "{bad}");
        }
        for reserved in ["/x/restart", "/tasks", "/a/versions", "/a/..", "/a/."] {
            assert_eq!(AppId::parse(reserved), Err(IdError::Reserved), "{reserved}");
        }
        assert_eq!(AppId::parse(""), Err(IdError::Empty));
        assert_eq!(AppId::parse("/"), Err(IdError::Empty));
        assert_eq!(AppId::parse("/a/../.."), Err(IdError::Reserved));
        assert_eq!(AppId::parse("/a/../b/.."), Err(IdError::Reserved));
        assert!(AppId::parse("/restart/x").is_ok(), "only the last segment is reserved");
    }

    #[test]
    fn task_ids_round_trip_to_instance_and_app() {
        let app = AppId::parse("/prod/web").unwrap();
        let inst = InstanceId::new(&app, "0f8e9d4c-1111-4222-8333-444455556666");
        assert_eq!(inst.as_str(), "prod_web.instance-0f8e9d4c-1111-4222-8333-444455556666");
        assert_eq!(inst.app_id(), Some(app));
        let task = inst.task_id(3);
        assert_eq!(task.as_str(), "prod_web.instance-0f8e9d4c-1111-4222-8333-444455556666._app.3");
        assert_eq!(task.parse(), Some((inst, 3)));
    }

    #[test]
    fn foreign_task_ids_do_not_parse() {
        for raw in [
            "",
            "x",
            "web.1234",
            "web.instance-._app.1",
            "Web.instance-u._app.1",
            "web.instance-u._app.x",
        ] {
            assert_eq!(TaskId::from_raw(raw).parse(), None, "{raw}");
        }
    }

    #[test]
    fn group_membership_is_by_whole_segments() {
        let id = AppId::parse("/prod/web").unwrap();
        assert!(id.is_in_group("/prod"));
        assert!(id.is_in_group("/"));
        assert!(id.is_in_group("/prod/web"));
        assert!(!id.is_in_group("/pro"));
    }
}

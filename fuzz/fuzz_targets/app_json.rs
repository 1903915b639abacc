//! Marathon app JSON (`sched_api::app_json`): parsed and validated into an
//! `AppSpec` as `POST /v2/apps` and `PUT /v2/apps/{id}` do, rendered back as
//! `GET` shows it, and merged with a partial update as `PATCH` does.
//!
//! Input: a JSON document (anything else is skipped).
//!
//! Checks: no panic; an app that parses renders to JSON that parses back to
//! the same app (parse → render → parse is stable); the document merged
//! onto the app as a partial update is validated without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sched_api::app_json::{merge, parse_app, render_app};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let _ = parse_app(&body, Some("/fuzz/put"));
    let Ok(app) = parse_app(&body, None) else { return };
    let rendered = Value::Object(render_app(&app));
    match parse_app(&rendered, None) {
        Ok(back) => assert_eq!(back, app, "the rendered app reads back differently\n{rendered}"),
        Err(e) => panic!("the rendered app is refused: {e:?}\n{rendered}"),
    }
    if let Some(patch) = body.as_object() {
        let merged = merge(&app, patch);
        let _ = parse_app(&merged, Some(app.id.as_str()));
    }
});

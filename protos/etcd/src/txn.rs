//! Building blocks of etcd transactions: compares ("if") and operations
//! ("then"/"else"). A transaction is a plain [`TxnRequest`]:
//!
//! ```
//! use etcd_api::etcdserverpb::TxnRequest;
//! use etcd_api::txn;
//! // Create `k` only if it does not exist; otherwise read it.
//! let request = TxnRequest {
//!     compare: vec![txn::absent(b"k")],
//!     success: vec![txn::put(b"k", b"v", 0)],
//!     failure: vec![txn::get(b"k")],
//! };
//! assert_eq!(request.success.len(), 1);
//! ```
//!
//! etcd refuses a transaction that writes one key twice or has more than
//! `--max-txn-ops` (default 128) compares, or operations per branch.

use crate::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, request_op,
};
use crate::prefix_end;

fn compare(key: &[u8], result: CompareResult, target: CompareTarget, t: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.to_vec(),
        target_union: Some(t),
        range_end: Vec::new(),
    }
}

/// True when `key`'s last modification was at `revision`
/// (`revision == 0`: the key does not exist).
pub fn mod_revision_is(key: &[u8], revision: i64) -> Compare {
    compare(key, CompareResult::Equal, CompareTarget::Mod, TargetUnion::ModRevision(revision))
}

/// True when `key` was created at `revision` (it still exists since then,
/// not deleted and recreated).
pub fn create_revision_is(key: &[u8], revision: i64) -> Compare {
    compare(key, CompareResult::Equal, CompareTarget::Create, TargetUnion::CreateRevision(revision))
}

/// True when `key` does not exist.
pub fn absent(key: &[u8]) -> Compare {
    create_revision_is(key, 0)
}

/// True when `key` holds exactly `value`.
pub fn value_is(key: &[u8], value: &[u8]) -> Compare {
    compare(key, CompareResult::Equal, CompareTarget::Value, TargetUnion::Value(value.to_vec()))
}

/// Puts `key` = `value`, attached to `lease` (0: none).
pub fn put(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..PutRequest::default()
        })),
    }
}

/// Deletes `key`.
pub fn delete(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            ..DeleteRangeRequest::default()
        })),
    }
}

/// Deletes every key under `prefix`. etcd refuses a transaction that also
/// puts a key inside that range.
pub fn delete_prefix(prefix: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: prefix.to_vec(),
            range_end: prefix_end(prefix),
            ..DeleteRangeRequest::default()
        })),
    }
}

/// Reads `key`.
pub fn get(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.to_vec(),
            ..RangeRequest::default()
        })),
    }
}

/// Reads `key`'s revisions, not its value.
pub fn get_revisions(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.to_vec(),
            keys_only: true,
            ..RangeRequest::default()
        })),
    }
}

/// A transaction: if every compare holds, `success`, else `failure`.
pub fn when(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest { compare, success, failure }
}

//! Test fixtures shared by the unit tests: one minimal, valid transfer (`data/media`, AssumeRole
//! mode, Account B `222222222222`), changed per test by a JSON merge of overrides. An override
//! value of `null` removes the field.

use serde_json::{Value, json};

use crate::api::{CrossAccountTransfer, CrossAccountTransferSpec};
use crate::naming::TransferId;

/// The uid of the fixture transfer.
pub const UID: &str = "1234";

/// The minimal spec as JSON.
pub fn base() -> Value {
    json!({
        "source": {"bucket": "src", "region": "us-east-1"},
        "destination": {"bucket": "dst", "region": "us-west-1", "accountId": "222222222222",
                        "access": {"mode": "AssumeRole", "roleArn": "arn:aws:iam::222222222222:role/admin"}}
    })
}

/// Merges `overrides` into `target`: objects field by field, `null` removes, anything else
/// replaces.
pub fn merge(target: &mut Value, overrides: &Value) {
    match (target, overrides) {
        (Value::Object(t), Value::Object(o)) => {
            for (key, value) in o {
                if value.is_null() {
                    t.remove(key);
                } else {
                    merge(t.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (t, o) => *t = o.clone(),
    }
}

/// The minimal spec with `overrides` merged in.
pub fn spec(overrides: Value) -> CrossAccountTransferSpec {
    let mut doc = base();
    merge(&mut doc, &overrides);
    serde_json::from_value(doc).expect("fixture spec must deserialize")
}

/// External mode instead of AssumeRole.
pub fn external() -> Value {
    json!({"destination": {"access": {"mode": "External", "roleArn": null}}})
}

/// Overrides that make the fixture a pull: the destination account `222222222222` runs the
/// copy from source account `111111111111`, reached through its role `admin`.
pub fn pull() -> Value {
    json!({"initiator": "Destination",
           "source": {"accountId": "111111111111",
                      "access": {"mode": "AssumeRole", "roleArn": "arn:aws:iam::111111111111:role/admin"}},
           "destination": {"access": null}})
}

/// The id of the fixture transfer.
pub fn id() -> TransferId {
    TransferId::new("data", "media", UID)
}

/// The fixture transfer at generation 2, with `overrides` merged into its spec.
pub fn transfer(overrides: Value) -> CrossAccountTransfer {
    let mut obj = CrossAccountTransfer::new("media", spec(overrides));
    obj.metadata.namespace = Some("data".into());
    obj.metadata.uid = Some(UID.into());
    obj.metadata.generation = Some(2);
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_merge_and_null_removes() {
        let s = spec(external());
        assert_eq!(s.foreign_access(), (crate::api::AccessMode::External, None));
        assert_eq!(s.destination.bucket, "dst");
        assert!(spec(json!({})).validate().is_empty(), "the fixture is valid");
        assert!(spec(pull()).validate().is_empty(), "the pull fixture is valid");
    }
}

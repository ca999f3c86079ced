//! JSON Lines for people. Hashes stay hex so a line can be matched with the
//! chain; nothing reads this form back.

use serde::Serialize;
use shardkeep_types::AuditRow;
use shardkeep_types::{ActorId, FreeText, KeyId, NodeId};

use crate::error::Error;
use crate::record::{AuditRecord, Outcome};

#[derive(Serialize)]
struct JsonRow<'a> {
    sequence: u64,
    hash: String,
    prev_hash: String,
    #[serde(flatten)]
    body: JsonBody<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonBody<'a> {
    Record(Box<JsonRecord<'a>>),
    Undecodable { error: String },
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    event: &'static str,
    timestamp: String,
    timestamp_ms: u64,
    operator: &'a str,
    approvers: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    share_index: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u8>,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

impl<'a> JsonRecord<'a> {
    fn new(record: &'a AuditRecord) -> Self {
        let (result, failure_reason) = match &record.outcome {
            Outcome::Success => ("success", None),
            Outcome::Failure { reason } => ("failure", Some(reason.as_str())),
        };
        Self {
            event: record.event.name(),
            timestamp: record.timestamp.to_string(),
            timestamp_ms: record.timestamp.as_unix_millis(),
            operator: record.operator.as_str(),
            approvers: record.approvers.iter().map(ActorId::as_str).collect(),
            key_id: record.key_id.as_ref().map(KeyId::as_str),
            node_id: record.node_id.as_ref().map(NodeId::as_str),
            version: record.version.map(shardkeep_types::KeyVersion::get),
            share_index: record.share_index.map(shardkeep_types::ShareIndex::get),
            envelope_id: record.envelope_id.map(hex::encode),
            signature: record.signature.map(hex::encode),
            target: record.target.as_ref().map(FreeText::as_str),
            threshold: record.threshold.map(shardkeep_types::Threshold::t),
            total: record.threshold.map(shardkeep_types::Threshold::n),
            result,
            failure_reason,
            detail: record.detail.as_ref().map(FreeText::as_str),
        }
    }
}

/// One row as a JSON object (no newline).
pub(crate) fn json_line(row: &AuditRow) -> Result<String, Error> {
    let decoded = AuditRecord::decode(&row.record);
    let body = match &decoded {
        Ok(record) => JsonBody::Record(Box::new(JsonRecord::new(record))),
        Err(error) => JsonBody::Undecodable {
            error: error.to_string(),
        },
    };
    Ok(serde_json::to_string(&JsonRow {
        sequence: row.sequence,
        hash: hex::encode(row.hash),
        prev_hash: hex::encode(row.prev_hash),
        body,
    })?)
}

#[cfg(test)]
mod tests {
    use shardkeep_types::Timestamp;

    use super::*;
    use crate::record::EventType;

    #[test]
    fn records_and_damage_both_print() {
        let mut record = AuditRecord::new(
            EventType::AccessDenied,
            Timestamp::from_unix_millis(86_400_000).unwrap(),
            ActorId::new("ops.mallory").unwrap(),
        );
        record.outcome = Outcome::Failure {
            reason: FreeText::new("no approval").unwrap(),
        };
        let row = AuditRow {
            sequence: 7,
            prev_hash: [1; 32],
            hash: [2; 32],
            record: record.encode().unwrap(),
        };
        let value: serde_json::Value = serde_json::from_str(&json_line(&row).unwrap()).unwrap();
        assert_eq!(value["sequence"], 7);
        assert_eq!(value["event"], "access-denied");
        assert_eq!(value["timestamp"], "1970-01-02T00:00:00.000Z");
        assert_eq!(value["result"], "failure");
        assert_eq!(value["failure_reason"], "no approval");
        assert_eq!(value["hash"], hex::encode([2; 32]));
        assert!(value.get("key_id").is_none());

        let damaged = AuditRow {
            record: vec![9],
            ..row
        };
        let value: serde_json::Value = serde_json::from_str(&json_line(&damaged).unwrap()).unwrap();
        assert_eq!(value["error"], "unsupported audit record format version 9");
    }
}

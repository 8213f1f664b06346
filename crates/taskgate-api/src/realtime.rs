//! The realtime run feed as the 4.8.3 SDK's ElectricSQL client reads it: an array of shape
//! messages, each a change to the run's row or a control message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One message of a shape response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ShapeMessage {
    /// The run's row, inserted (a snapshot) or updated (a live answer).
    Change {
        /// `"public"."TaskRun"/"<internal id>"`.
        key: String,
        /// Column name → the column's text encoding (or null), without skipped columns; the
        /// columns and their types are in the `electric-schema` header.
        #[schema(value_type = Object)]
        value: Map<String, Value>,
        headers: ChangeHeaders,
    },
    /// `{"headers": {"control": "up-to-date"}}`: the client has everything there is.
    Control { headers: ControlHeaders },
}

impl ShapeMessage {
    pub fn up_to_date() -> Self {
        ShapeMessage::Control {
            headers: ControlHeaders {
                control: "up-to-date".into(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeHeaders {
    /// `insert` or `update`.
    pub operation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ControlHeaders {
    pub control: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_messages_pin_their_shape() {
        let mut value = Map::new();
        value.insert("friendlyId".into(), Value::String("run_1".into()));
        value.insert("completedAt".into(), Value::Null);
        insta::assert_json_snapshot!(vec![
            ShapeMessage::Change {
                key: "\"public\".\"TaskRun\"/\"c1\"".into(),
                value,
                headers: ChangeHeaders {
                    operation: "insert".into(),
                },
            },
            ShapeMessage::up_to_date(),
        ]);
    }
}

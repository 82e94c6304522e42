//! Small ONNX graphs built in memory for the tests of our graph rewrites (`quantize.rs`,
//! `nan_guard.rs`), typed by tract-onnx as a model file would be.

use tract_onnx::pb::{GraphProto, NodeProto, ValueInfoProto};
use tract_onnx::prelude::*;

/// An ONNX value of `elem_type` (ONNX's numbering) and shape: numbers, or names for symbols.
pub fn value_info(name: &str, elem_type: i32, dims: &[&str]) -> ValueInfoProto {
    use tract_onnx::pb::{
        tensor_shape_proto::{dimension, Dimension},
        type_proto, TensorShapeProto, TypeProto,
    };
    let dim = |d: &&str| Dimension {
        value: Some(match d.parse::<i64>() {
            Ok(v) => dimension::Value::DimValue(v),
            Err(_) => dimension::Value::DimParam(d.to_string()),
        }),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(dim).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An ONNX graph of `nodes`, as tract-onnx types it.
pub fn typed(nodes: Vec<NodeProto>, graph: GraphProto) -> TypedModel {
    use tract_onnx::pb::{ModelProto, OperatorSetIdProto};
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: nodes,
            ..graph
        }),
        ..Default::default()
    };
    tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .unwrap()
        .into_typed()
        .unwrap()
}

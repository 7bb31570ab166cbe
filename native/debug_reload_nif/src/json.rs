//! JSON for the DAP layer: no JSON library is available from hex here, so
//! serde_json does the encoding. Maps become objects (atom or string keys),
//! lists arrays, `nil`/booleans their JSON values, other atoms strings.

use rustler::types::map::MapIterator;
use rustler::{Binary, Encoder, Env, Error, NifResult, OwnedBinary, Term, TermType};
use serde_json::{Map, Number, Value};

fn to_value(term: Term) -> NifResult<Value> {
    match term.get_type() {
        TermType::Atom => Ok(match term.atom_to_string()?.as_str() {
            "nil" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_string()),
        }),
        TermType::Binary => {
            let bin: Binary = term.decode()?;
            let text = std::str::from_utf8(bin.as_slice()).map_err(|_| Error::BadArg)?;
            Ok(Value::String(text.to_string()))
        }
        TermType::Integer => match term.decode::<i64>() {
            Ok(i) => Ok(Value::Number(i.into())),
            Err(_) => Ok(Value::Number(term.decode::<u64>()?.into())),
        },
        TermType::Float => Number::from_f64(term.decode()?)
            .map(Value::Number)
            .ok_or(Error::BadArg),
        TermType::List => term
            .decode::<Vec<Term>>()?
            .into_iter()
            .map(to_value)
            .collect::<NifResult<Vec<_>>>()
            .map(Value::Array),
        TermType::Map => {
            let mut object = Map::new();
            for (key, value) in MapIterator::new(term).ok_or(Error::BadArg)? {
                object.insert(key_string(key)?, to_value(value)?);
            }
            Ok(Value::Object(object))
        }
        _ => Err(Error::BadArg),
    }
}

fn key_string(key: Term) -> NifResult<String> {
    match key.get_type() {
        TermType::Atom => key.atom_to_string(),
        TermType::Binary => {
            let bin: Binary = key.decode()?;
            String::from_utf8(bin.as_slice().to_vec()).map_err(|_| Error::BadArg)
        }
        _ => Err(Error::BadArg),
    }
}

fn from_value<'a>(env: Env<'a>, value: &Value) -> Term<'a> {
    match value {
        Value::Null => rustler::types::atom::nil().encode(env),
        Value::Bool(b) => b.encode(env),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.encode(env),
            (None, Some(u)) => u.encode(env),
            _ => n.as_f64().unwrap_or(0.0).encode(env),
        },
        Value::String(s) => s.encode(env),
        Value::Array(items) => items
            .iter()
            .map(|v| from_value(env, v))
            .collect::<Vec<_>>()
            .encode(env),
        Value::Object(object) => {
            let (keys, values): (Vec<Term>, Vec<Term>) = object
                .iter()
                .map(|(k, v)| (k.encode(env), from_value(env, v)))
                .unzip();
            Term::map_from_arrays(env, &keys, &values)
                .unwrap_or_else(|_| rustler::types::map::map_new(env))
        }
    }
}

/// Encodes a term as JSON. Raises `ArgumentError` for terms JSON cannot hold.
#[rustler::nif(schedule = "DirtyCpu")]
fn encode_json(term: Term) -> NifResult<OwnedBinary> {
    let json = serde_json::to_vec(&to_value(term)?).map_err(|_| Error::BadArg)?;
    let mut out = OwnedBinary::new(json.len());
    out.as_mut_slice().copy_from_slice(&json);
    Ok(out)
}

/// Decodes JSON into maps with string keys, lists, numbers, strings,
/// booleans and `nil`; returns `{:error, reason}` for malformed input.
#[rustler::nif(schedule = "DirtyCpu")]
fn decode_json<'a>(env: Env<'a>, json: Binary<'a>) -> Term<'a> {
    match serde_json::from_slice::<Value>(json.as_slice()) {
        Ok(value) => (rustler::types::atom::ok(), from_value(env, &value)).encode(env),
        Err(e) => (rustler::types::atom::error(), e.to_string()).encode(env),
    }
}

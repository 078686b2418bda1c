//! One reader for every script reply: a script answers a flat array, and its
//! decoder takes the items in order, the way the script's header lists them.
//! A reply that is too short, of the wrong type or too long is an internal
//! error naming the script, never a silently wrong answer.

use redis::{FromRedisValue, Value};

use crate::error::{Error, Result};

/// The items of one script's reply, read front to back.
#[derive(Debug)]
pub struct ReplyReader {
    items: std::vec::IntoIter<Value>,
    /// The script it came from, for the error.
    what: &'static str,
    read: usize,
}

impl ReplyReader {
    /// A reader over `reply`, which must be an array.
    pub fn new(what: &'static str, reply: Value) -> Result<Self> {
        match reply {
            Value::Array(items) => Ok(Self {
                items: items.into_iter(),
                what,
                read: 0,
            }),
            other => Err(Error::Internal(format!("{what} answered {other:?}, not an array"))),
        }
    }

    /// The next item as it came.
    pub fn next_value(&mut self) -> Result<Value> {
        let v = self
            .items
            .next()
            .ok_or_else(|| Error::Internal(format!("{} reply too short: no item {}", self.what, self.read)))?;
        self.read += 1;
        Ok(v)
    }

    /// The next item converted to `T` (a number, a text, a list, an option).
    pub fn next_as<T: FromRedisValue>(&mut self) -> Result<T> {
        let at = self.read;
        let v = self.next_value()?;
        redis::from_redis_value(v).map_err(|e| Error::Internal(format!("{} reply, item {at}: {e}", self.what)))
    }

    pub fn next_int(&mut self) -> Result<i64> {
        self.next_as()
    }

    pub fn next_text(&mut self) -> Result<String> {
        self.next_as()
    }

    pub fn next_list(&mut self) -> Result<Vec<String>> {
        self.next_as()
    }

    /// `1` as true, anything else as false (Lua's booleans reach Redis as 1 and nil).
    pub fn next_flag(&mut self) -> Result<bool> {
        Ok(self.next_as::<Option<i64>>()? == Some(1))
    }

    /// The next item, itself an array, as a reader of its own.
    pub fn next_reader(&mut self) -> Result<ReplyReader> {
        let v = self.next_value()?;
        ReplyReader::new(self.what, v)
    }

    /// How many items are left.
    pub fn remaining(&self) -> usize {
        self.items.len()
    }

    /// Ends the reading: a reply with items left over is a decoder that no
    /// longer matches its script.
    pub fn finish(self) -> Result<()> {
        match self.items.len() {
            0 => Ok(()),
            n => Err(Error::Internal(format!(
                "{} reply too long: {n} item(s) after item {}",
                self.what,
                self.read.saturating_sub(1)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(items: Vec<Value>) -> ReplyReader {
        ReplyReader::new("test", Value::Array(items)).unwrap()
    }

    #[test]
    fn items_are_read_in_order_and_converted() {
        let mut r = reply(vec![
            Value::Int(7),
            Value::BulkString(b"HELD".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"A1".to_vec()),
                Value::BulkString(b"A2".to_vec()),
            ]),
            Value::BulkString(b"12".to_vec()),
            Value::Nil,
        ]);
        assert_eq!(r.next_int().unwrap(), 7);
        assert_eq!(r.next_text().unwrap(), "HELD");
        assert_eq!(r.next_list().unwrap(), vec!["A1", "A2"]);
        assert_eq!(r.next_int().unwrap(), 12, "Lua's numbers as text read as numbers");
        assert!(!r.next_flag().unwrap(), "nil is false");
        r.finish().unwrap();
    }

    #[test]
    fn a_short_reply_names_the_missing_item() {
        let mut r = reply(vec![Value::Int(1)]);
        r.next_int().unwrap();
        let e = r.next_text().unwrap_err().to_string();
        assert!(e.contains("too short") && e.contains("item 1"), "{e}");
    }

    #[test]
    fn leftovers_fail_the_reply() {
        let mut r = reply(vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
        r.next_int().unwrap();
        assert_eq!(r.remaining(), 2);
        let e = r.finish().unwrap_err().to_string();
        assert!(e.contains("too long") && e.contains("2 item"), "{e}");
    }

    #[test]
    fn a_wrong_type_is_an_error_not_a_default() {
        let mut r = reply(vec![Value::BulkString(b"x".to_vec())]);
        assert!(r.next_int().is_err());
        assert!(ReplyReader::new("test", Value::Int(1)).is_err(), "not an array");
    }

    #[test]
    fn nested_arrays_read_with_their_own_reader() {
        let mut r = reply(vec![Value::Array(vec![Value::Int(1), Value::Int(2)])]);
        let mut inner = r.next_reader().unwrap();
        assert_eq!((inner.next_int().unwrap(), inner.next_int().unwrap()), (1, 2));
        inner.finish().unwrap();
        r.finish().unwrap();
    }
}

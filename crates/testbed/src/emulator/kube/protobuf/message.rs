//! The vocabulary the schemas are written in: a message is a list of numbered fields, each with
//! the JSON name and the kind of payload it carries. The schemas (`schema`, `workloads`) and the
//! decoder (`decode`) all speak it, so it lives apart from both.

/// How a field's payload becomes JSON.
#[derive(Debug)]
pub enum Kind {
    String,
    /// base64, as JSON carries `[]byte`.
    Bytes,
    Int32,
    Int64,
    Bool,
    Message(&'static Message),
    /// `meta/v1.Time` {seconds = 1, nanos = 2} → RFC 3339.
    Time,
    /// `intstr.IntOrString` {type = 1, intVal = 2, strVal = 3} → a number or a string.
    IntOrString,
    /// `resource.Quantity` {string = 1} → its string.
    Quantity,
    /// `map<string, V>`: repeated entries {key = 1, value = 2}.
    Map(&'static Kind),
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    pub number: u32,
    pub name: &'static str,
    pub kind: Kind,
    pub repeated: bool,
    /// A pointer in Go: present means set, even to a zero value. Other fields are always on the
    /// wire and, zero, are left out (as `omitempty` leaves them out of JSON).
    pub presence: bool,
}

/// A message type.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

pub const fn one(number: u32, name: &'static str, kind: Kind) -> Field {
    Field { number, name, kind, repeated: false, presence: false }
}

/// A Go pointer field.
pub const fn ptr(number: u32, name: &'static str, kind: Kind) -> Field {
    Field { number, name, kind, repeated: false, presence: true }
}

pub const fn list(number: u32, name: &'static str, kind: Kind) -> Field {
    Field { number, name, kind, repeated: true, presence: false }
}

pub const STRINGS: Kind = Kind::Map(&Kind::String);

//! Secret bytes that never show up in logs and are wiped from memory on drop.

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice};

/// Secret bytes whose `Debug`/`Display` never show the content; zeroized on drop.
///
/// Cloning copies the bytes into a new zeroizing buffer.
#[derive(Clone)]
pub struct SecretBytes(SecretSlice<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (no copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// The secret content. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Number of bytes (safe to log).
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted>, {} bytes)", self.len())
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::SecretBytes;

    #[test]
    fn debug_and_display_redact_the_content() {
        let secret = SecretBytes::new(b"SENTINEL-hunter2".to_vec());
        let debug = format!("{secret:?}");
        let display = format!("{secret}");
        assert_eq!(debug, "SecretBytes(<redacted>, 16 bytes)");
        assert_eq!(display, "<redacted, 16 bytes>");
        assert!(!debug.contains("SENTINEL") && !display.contains("SENTINEL"));
        let pretty = format!("{:#?}", vec![secret.clone()]);
        assert!(!pretty.contains("SENTINEL"));
    }

    #[test]
    fn exposes_length_and_content() {
        let secret = SecretBytes::new(vec![1, 2, 3]);
        assert_eq!(secret.expose(), &[1, 2, 3]);
        assert_eq!(secret.len(), 3);
        assert!(!secret.is_empty());
        assert!(SecretBytes::from(Vec::new()).is_empty());
        assert_eq!(secret.clone().expose(), secret.expose());
    }
}

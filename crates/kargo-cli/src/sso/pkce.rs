//! PKCE (RFC 7636, method S256) and the `state` of an authorization request, from the system's
//! secure random generator.

use base64::Engine as _;

/// RFC 7636's unreserved characters, the alphabet of a code verifier.
const VERIFIER_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A verifier's length: RFC 7636's maximum (as upstream's CLI).
const VERIFIER_LEN: usize = 128;
/// A state's length (as upstream's CLI).
const STATE_LEN: usize = 24;

/// A new code verifier: 128 characters of `A-Za-z0-9-._~`.
pub fn verifier() -> String {
    random_string(VERIFIER_ALPHABET, VERIFIER_LEN)
}

/// A new `state`: 24 letters.
pub fn state() -> String {
    random_string(LETTERS, STATE_LEN)
}

/// The S256 code challenge of a verifier: base64url (no padding) of its SHA-256.
pub fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
fn random_string(alphabet: &[u8], len: usize) -> String {
    let n = alphabet.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // The system generator failing is not recoverable; aws-lc aborts before that anyway.
        aws_lc_rs::rand::fill(&mut buf).expect("the system's random generator failed");
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % n]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_128_unreserved_characters_and_differ() {
        let a = verifier();
        assert_eq!(a.len(), 128);
        assert!(a.bytes().all(|b| VERIFIER_ALPHABET.contains(&b)), "{a}");
        assert_ne!(a, verifier());
        // Every character of the alphabet turns up over many draws (no bias to a subset).
        let many: String = (0..20).map(|_| verifier()).collect();
        for &c in VERIFIER_ALPHABET {
            assert!(many.as_bytes().contains(&c), "{}", char::from(c));
        }
    }

    #[test]
    fn states_are_24_letters_and_differ() {
        let s = state();
        assert_eq!(s.len(), 24);
        assert!(s.bytes().all(|b| b.is_ascii_alphabetic()), "{s}");
        assert_ne!(s, state());
    }
}

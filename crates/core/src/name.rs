//! Rules for the names devices, sensors, kinds and tenants carry.
//!
//! Names travel in MQTT topics (`ingot/<device>/events/<sensor>`), CoAP URI queries and URL
//! paths, so they are restricted to characters that need no escaping in any of them and
//! can never be a topic separator or wildcard: ASCII letters and digits and `. _ : ~ @ -`,
//! 1 to 128 characters.

/// The longest name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a device, sensor, kind or tenant name; the error is a reason for a field error.
pub fn validate(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("is longer than 128 characters");
    }
    if !name.bytes().all(is_name_byte) {
        return Err("may only contain letters, digits and . _ : ~ @ -");
    }
    Ok(())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'~' | b'@' | b'-')
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_device_like_names() {
        for ok in [
            "probe-7",
            "demoMemoria",
            "BSTZ9IEK39HHYZB6I",
            "cam_1.front",
            "a@b:c~d",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_topic_separators_and_blanks() {
        for bad in [
            "",
            "a/b",
            "a+b",
            "#",
            "with space",
            "tab\t",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}

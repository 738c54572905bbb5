//! Kubernetes resource quantities ("1Gi", "500M", "1.5Gi", "1073741824"), with the one grammar
//! the host uses too ([`kr_policy_abi::quantity`]).

pub use kr_policy_abi::quantity::{parse, Quantity, QuantityError};

/// A quantity as a whole number of bytes (rounded down); None when it is not a quantity, or
/// negative, or too large.
pub fn parse_bytes(q: &str) -> Option<u128> {
    parse(q).ok()?.whole_units()
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn quantities() {
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("+1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("1073741824"), Some(1 << 30));
        assert_eq!(parse_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("1e3"), Some(1000));
        assert_eq!(parse_bytes("Gi"), None);
        assert_eq!(parse_bytes("1GB"), None);
        assert_eq!(parse_bytes("-1Gi"), None);
    }
}

//! Validated scalar types: each checks itself while deserializing, so its error keeps the
//! position and the field path.

use serde::{Deserialize, Serialize};

macro_rules! validated {
    ($(#[$doc:meta])* $name:ident($inner:ty) from $source:ty, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let check: fn($source) -> Result<$inner, String> = $check;
                let raw = <$source>::deserialize(deserializer)?;
                check(raw).map($name).map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }
    };
}

validated!(
    /// Number of masters: a Redis Cluster needs at least 3 to keep a majority when one fails.
    Masters(u32) from i64,
    |n| match n {
        n if n < 0 => Err(format!("must not be negative, got {n}")),
        n if n < 3 => Err(format!(
            "a Redis Cluster needs at least 3 masters so that a majority survives a failure, got {n}"
        )),
        n if n > 1000 => Err(format!("at most 1000 masters are supported, got {n}")),
        n => Ok(n as u32),
    }
);

validated!(
    /// A non-negative count.
    Count(u32) from i64,
    |n| match n {
        n if n < 0 => Err(format!("must not be negative, got {n}")),
        n if n > 100 => Err(format!("at most 100 is supported, got {n}")),
        n => Ok(n as u32),
    }
);

validated!(
    /// A Kubernetes resource quantity such as `1Gi` or `500Mi`.
    Quantity(String) from String,
    |q| validate_quantity(&q).map(|_| q)
);

validated!(
    /// A container image reference.
    Image(String) from String,
    |image| {
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            Err(format!("`{image}` is not an image reference"))
        } else {
            Ok(image)
        }
    }
);

validated!(
    /// An RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters.
    DnsLabel(String) from String,
    |name| validate_dns_label(&name, 63).map(|_| name)
);

validated!(
    /// A StatefulSet name: an RFC 1123 label short enough that its pods' revision-hash labels fit.
    StatefulSetName(String) from String,
    |name| validate_dns_label(&name, 52).map(|_| name)
);

validated!(
    /// An RFC 1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters.
    DnsSubdomain(String) from String,
    |name| validate_dns_subdomain(&name).map(|_| name)
);

validated!(
    /// A string that must say something.
    NonEmpty(String) from String,
    |text| if text.trim().is_empty() { Err("must not be empty".to_string()) } else { Ok(text) }
);

pub fn validate_dns_label(name: &str, max: usize) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let valid_ends = name
        .bytes()
        .next()
        .zip(name.bytes().last())
        .is_some_and(|(first, last)| first != b'-' && last != b'-');
    if name.is_empty() || name.len() > max || !valid_chars || !valid_ends {
        return Err(format!(
            "`{name}` is not a valid name: use at most {max} lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

pub fn validate_dns_subdomain(name: &str) -> Result<(), String> {
    if name.len() > 253
        || name
            .split('.')
            .any(|part| validate_dns_label(part, 63).is_err())
    {
        return Err(format!(
            "`{name}` is not a valid name: use at most 253 lowercase letters, digits, '-' and '.', \
             each dot-separated part starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A Kubernetes quantity (the grammar of apimachinery's `resource.ParseQuantity`, shared with
/// the policies through `kr_policy_abi::quantity`), not negative. `1Gb` and `1 Gi` are not
/// quantities.
pub fn validate_quantity(quantity: &str) -> Result<(), String> {
    match kr_policy_abi::quantity::parse(quantity) {
        Ok(q) if q.is_negative() => Err(format!("`{quantity}` must not be negative")),
        Ok(_) => Ok(()),
        Err(why) => Err(format!(
            "`{quantity}` is not a Kubernetes quantity ({why}): write a number with a suffix \
             such as `1Gi`, `512Mi` or `10G` (binary suffixes Ki Mi Gi Ti Pi Ei, decimal k M G T P E)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for good in [
            "1Gi", "512Mi", "10G", "1", "0.5Gi", "1e3", "100m", "+1Gi", "100u", ".5Gi",
        ] {
            assert!(validate_quantity(good).is_ok(), "{good}");
        }
        for bad in ["1Gb", "1 Gi", "Gi", "", "1.2.3Gi", "1e", "-1Gi", "1GiB"] {
            assert!(validate_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(validate_dns_label("redis-cluster", 52).is_ok());
        for bad in ["Redis", "-a", "a-", "a_b", "", &"a".repeat(53)] {
            assert!(validate_dns_label(bad, 52).is_err(), "{bad}");
        }
        assert!(validate_dns_subdomain("redis.conf-map").is_ok());
        assert!(validate_dns_subdomain("a..b").is_err());
    }
}

//! IP address management as Docker does it: subnets picked from the default
//! pools (172.17.0.0/16 for the default `bridge` network, then 172.18.0.0/16
//! and up, then 192.168.0.0/20 blocks) skipping subnets already in use or
//! routed on the host; custom `ipam.config` (subnet, ip_range, gateway,
//! aux_addresses); addresses handed out and released per network, static
//! ones honoured; IPv4 and IPv6 alike.
//!
//! Pure: the host's routes are passed in (see `host_routes`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an address or subnet could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: use ADDRESS/PREFIX")]
    BadSubnet(String),
    #[error("{what} {addr} is not in subnet {subnet}")]
    Outside {
        what: &'static str,
        addr: IpAddr,
        subnet: Subnet,
    },
    #[error("address {0} is already in use")]
    InUse(IpAddr),
    #[error("no free address left in {0}")]
    Exhausted(Subnet),
    #[error("subnet {0} overlaps {1}, which is already in use")]
    Overlap(Subnet, Subnet),
    #[error("all default address pools are in use: give the network a subnet")]
    PoolsExhausted,
}

/// A subnet (network address and prefix length), v4 or v6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

impl Subnet {
    fn bits(&self) -> u8 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn mask(&self) -> u128 {
        let host_bits = (self.bits() - self.prefix) as u32;
        let all: u128 = if self.addr.is_ipv4() {
            u32::MAX as u128
        } else {
            u128::MAX
        };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits).wrapping_sub(1))
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        from_u128(to_u128(self.addr) & self.mask(), self.addr.is_ipv6())
    }

    fn first(&self) -> u128 {
        to_u128(self.network())
    }

    fn last(&self) -> u128 {
        let host_bits = (self.bits() - self.prefix) as u32;
        let span = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        self.first() | span
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && (to_u128(ip) & self.mask()) == self.first()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// The first usable host address (the default gateway).
    pub fn first_host(&self) -> IpAddr {
        from_u128(self.first() + 1, self.addr.is_ipv6())
    }

    /// Addresses that may be handed out: not the network address, and not the
    /// broadcast address in IPv4.
    fn usable(&self, v: u128) -> bool {
        v > self.first() && (self.addr.is_ipv6() || v < self.last())
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        let sub = Subnet { addr, prefix };
        Ok(Subnet {
            addr: sub.network(),
            prefix,
        })
    }
}

impl TryFrom<String> for Subnet {
    type Error = IpamError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// Docker's default pools: 172.17.0.0/16 … 172.31.0.0/16, then
/// 192.168.0.0/20 … 192.168.240.0/20.
pub fn default_pools() -> Vec<Subnet> {
    let mut out: Vec<Subnet> = (17..=31)
        .map(|b| Subnet {
            addr: IpAddr::V4(Ipv4Addr::new(172, b, 0, 0)),
            prefix: 16,
        })
        .collect();
    out.extend((0..16).map(|i| Subnet {
        addr: IpAddr::V4(Ipv4Addr::new(192, 168, i * 16, 0)),
        prefix: 20,
    }));
    out
}

/// IPv4 routes of the host from `/proc/net/route` text (default route left out).
pub fn host_routes(proc_net_route: &str) -> Vec<Subnet> {
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            let addr = Ipv4Addr::from(u32::from_be(dest));
            Some(Subnet {
                addr: IpAddr::V4(addr),
                prefix: u32::from_be(mask).count_ones() as u8,
            })
        })
        .collect()
}

/// Picks the first default pool that overlaps nothing in `taken` (subnets of
/// other networks and routes of the host).
pub fn pick_subnet(taken: &[Subnet], default_bridge: bool) -> Result<Subnet, IpamError> {
    let pools = default_pools();
    let candidates: Box<dyn Iterator<Item = &Subnet>> = if default_bridge {
        Box::new(pools.iter())
    } else {
        Box::new(pools.iter().skip(1))
    };
    for p in candidates {
        if !taken.iter().any(|t| t.overlaps(p)) {
            return Ok(*p);
        }
    }
    Err(IpamError::PoolsExhausted)
}

/// One network's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Subnet,
    pub gateway: IpAddr,
    /// Where dynamic addresses come from (the whole subnet when absent).
    pub ip_range: Option<Subnet>,
    /// Addresses reserved by name (never handed out).
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// Addresses in use.
    pub allocated: BTreeSet<IpAddr>,
}

impl Pool {
    /// A pool for a subnet, with an optional gateway and range.
    pub fn new(
        subnet: Subnet,
        gateway: Option<IpAddr>,
        ip_range: Option<Subnet>,
        aux_addresses: BTreeMap<String, IpAddr>,
    ) -> Result<Pool, IpamError> {
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) {
            return Err(IpamError::Outside {
                what: "gateway",
                addr: gateway,
                subnet,
            });
        }
        if let Some(r) = ip_range {
            if !(subnet.contains(r.network()) && r.prefix >= subnet.prefix) {
                return Err(IpamError::Outside {
                    what: "ip_range",
                    addr: r.network(),
                    subnet,
                });
            }
        }
        for a in aux_addresses.values() {
            if !subnet.contains(*a) {
                return Err(IpamError::Outside {
                    what: "aux address",
                    addr: *a,
                    subnet,
                });
            }
        }
        Ok(Pool {
            subnet,
            gateway,
            ip_range,
            aux_addresses,
            allocated: BTreeSet::new(),
        })
    }

    fn reserved(&self, ip: IpAddr) -> bool {
        ip == self.gateway
            || self.allocated.contains(&ip)
            || self.aux_addresses.values().any(|a| *a == ip)
    }

    /// Hands out `wanted` (a static address) or the lowest free one in the range.
    pub fn allocate(&mut self, wanted: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        if let Some(ip) = wanted {
            if !self.subnet.contains(ip) || !self.subnet.usable(to_u128(ip)) {
                return Err(IpamError::Outside {
                    what: "address",
                    addr: ip,
                    subnet: self.subnet,
                });
            }
            if self.reserved(ip) {
                return Err(IpamError::InUse(ip));
            }
            self.allocated.insert(ip);
            return Ok(ip);
        }
        let range = self.ip_range.unwrap_or(self.subnet);
        let v6 = self.subnet.addr.is_ipv6();
        // The range's own network address is not handed out either.
        let mut v = range.first() + 1;
        // IPv6 subnets are large: give up after a bounded search.
        let limit = range.last().min(range.first().saturating_add(1 << 20));
        while v <= limit {
            let ip = from_u128(v, v6);
            if self.subnet.usable(v) && !self.reserved(ip) {
                self.allocated.insert(ip);
                return Ok(ip);
            }
            v += 1;
        }
        Err(IpamError::Exhausted(self.subnet))
    }

    pub fn release(&mut self, ip: IpAddr) {
        self.allocated.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Subnet {
        t.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(t: &str) -> IpAddr {
        t.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn subnets_parse_and_compare() {
        assert_eq!(s("172.18.3.4/16").to_string(), "172.18.0.0/16");
        assert!(s("10.0.0.0/8").contains(ip("10.1.2.3")));
        assert!(!s("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(s("10.0.0.0/8").overlaps(&s("10.5.0.0/16")));
        assert!(!s("10.0.0.0/16").overlaps(&s("10.1.0.0/16")));
        assert!(s("fd00::/64").contains(ip("fd00::5")));
        assert!(!s("fd00::/64").overlaps(&s("10.0.0.0/8")));
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert_eq!(s("10.0.0.0/24").first_host(), ip("10.0.0.1"));
    }

    #[test]
    fn default_pools_skip_what_is_taken() {
        assert_eq!(pick_subnet(&[], true), Ok(s("172.17.0.0/16")));
        assert_eq!(pick_subnet(&[], false), Ok(s("172.18.0.0/16")));
        let taken = [s("172.18.0.0/16"), s("172.19.5.0/24")];
        assert_eq!(pick_subnet(&taken, false), Ok(s("172.20.0.0/16")));
        let all: Vec<Subnet> = vec![s("172.16.0.0/12"), s("192.168.0.0/16")];
        assert_eq!(pick_subnet(&all, false), Err(IpamError::PoolsExhausted));
    }

    #[test]
    fn host_routes_are_read_from_proc() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                    br0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(
            host_routes(text),
            vec![s("10.0.0.0/16"), s("172.18.0.0/16")]
        );
    }

    #[test]
    fn addresses_are_handed_out_in_order_and_released() {
        let mut p = Pool::new(s("10.5.0.0/29"), None, None, BTreeMap::new())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.gateway, ip("10.5.0.1"));
        let got: Vec<IpAddr> = (0..5)
            .map(|_| p.allocate(None).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(
            got,
            ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
                .map(ip)
                .to_vec()
        );
        assert_eq!(
            p.allocate(None),
            Err(IpamError::Exhausted(s("10.5.0.0/29"))),
            "broadcast is never given"
        );
        p.release(ip("10.5.0.3"));
        assert_eq!(p.allocate(None), Ok(ip("10.5.0.3")));
    }

    #[test]
    fn custom_config_static_addresses_and_ranges() {
        let aux: BTreeMap<String, IpAddr> = [("host1".to_string(), ip("10.5.0.5"))].into();
        let mut p = Pool::new(
            s("10.5.0.0/16"),
            Some(ip("10.5.0.254")),
            Some(s("10.5.1.0/24")),
            aux,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.allocate(None), Ok(ip("10.5.1.1")), "from the range");
        assert_eq!(
            p.allocate(Some(ip("10.5.0.7"))),
            Ok(ip("10.5.0.7")),
            "static outside the range"
        );
        assert_eq!(
            p.allocate(Some(ip("10.5.0.7"))),
            Err(IpamError::InUse(ip("10.5.0.7")))
        );
        assert_eq!(
            p.allocate(Some(ip("10.5.0.5"))),
            Err(IpamError::InUse(ip("10.5.0.5"))),
            "aux reserved"
        );
        assert_eq!(
            p.allocate(Some(ip("10.5.0.254"))),
            Err(IpamError::InUse(ip("10.5.0.254"))),
            "gateway"
        );
        assert!(matches!(
            p.allocate(Some(ip("10.6.0.1"))),
            Err(IpamError::Outside { .. })
        ));
        assert!(Pool::new(
            s("10.5.0.0/16"),
            Some(ip("10.6.0.1")),
            None,
            BTreeMap::new()
        )
        .is_err());
        assert!(Pool::new(
            s("10.5.0.0/16"),
            None,
            Some(s("10.6.0.0/24")),
            BTreeMap::new()
        )
        .is_err());
    }

    #[test]
    fn ipv6_pools() {
        let mut p = Pool::new(s("fd00:1::/64"), None, None, BTreeMap::new())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.gateway, ip("fd00:1::1"));
        assert_eq!(p.allocate(None), Ok(ip("fd00:1::2")));
        assert_eq!(p.allocate(Some(ip("fd00:1::99"))), Ok(ip("fd00:1::99")));
    }

    #[test]
    fn pools_serialize_as_text_subnets() {
        let p = Pool::new(s("10.9.0.0/24"), None, None, BTreeMap::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let j = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(j["subnet"], "10.9.0.0/24");
        let back: Pool = serde_json::from_value(j).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, p);
    }
}

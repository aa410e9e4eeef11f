//! A bound on the incoming connections still in their handshake from any
//! one IP address. The node takes 64 such connections at once; without
//! this, one host opening TCP connections and then saying nothing (each
//! waits out the handshake timeout) would hold all of them, and no member
//! could connect. With it, one address holds at most its share, and the
//! rest stay open to everyone else.
//!
//! What counts as one address: an IPv4 address (an IPv4-mapped IPv6
//! address is that IPv4 address); for IPv6, the /64 network, which one
//! host commonly holds whole. And every QUIC handshake counts against one
//! share together: libp2p-quic answers a first packet without a Retry, so
//! its source address is not proven and could be spoofed a new one each
//! time; bounded together, QUIC can hold no more than one share of the
//! slots, and TCP (whose handshake proves the address) keeps the rest.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};

use crate::status::NetStatus;

/// Whom an incoming handshake counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// An IPv4 address, or an IPv6 /64 network (its first address).
    Ip(IpAddr),
    /// Any QUIC connection (its source address is unproven).
    Quic,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Ip(IpAddr::V6(net)) => write!(f, "{net}/64"),
            Source::Ip(ip) => write!(f, "{ip}"),
            Source::Quic => write!(f, "QUIC (all sources together)"),
        }
    }
}

/// Refused: the address already has as many handshakes under way as it may.
#[derive(Debug, thiserror::Error)]
#[error("{from} already has {max} incoming connections in their handshake")]
pub(crate) struct TooManyFromOneAddress {
    from: Source,
    max: usize,
}

pub(crate) struct Behaviour {
    max: usize,
    pending: HashMap<ConnectionId, Source>,
    per_ip: HashMap<Source, usize>,
    status: Arc<Mutex<NetStatus>>,
}

impl Behaviour {
    pub(crate) fn new(max: usize, status: Arc<Mutex<NetStatus>>) -> Self {
        Behaviour {
            max,
            pending: HashMap::new(),
            per_ip: HashMap::new(),
            status,
        }
    }

    fn done(&mut self, id: &ConnectionId) {
        if let Some(ip) = self.pending.remove(id)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Whom a connection from `addr` in its handshake counts against, if it
/// names an address.
pub(crate) fn source_of(addr: &Multiaddr) -> Option<Source> {
    if addr.iter().any(|p| matches!(p, Protocol::Udp(_))) {
        return Some(Source::Quic);
    }
    host_of(addr)
}

/// The host of an established connection from `addr` (its handshake
/// proved the address, QUIC's too), if it names an address.
pub(crate) fn host_of(addr: &Multiaddr) -> Option<Source> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(Source::Ip(IpAddr::V4(ip))),
        Protocol::Ip6(ip) => Some(Source::Ip(match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(ip) & !((1u128 << 64) - 1)).into()),
        })),
        _ => None,
    })
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(source) = source_of(remote) else {
            return Ok(());
        };
        let n = self.per_ip.entry(source).or_insert(0);
        if *n >= self.max {
            self.status.lock().expect("status lock").handshakes_refused += 1;
            tracing::debug!(%source, max = self.max, "incoming connection refused: too many handshakes from one address");
            return Err(ConnectionDenied::new(TooManyFromOneAddress {
                from: source,
                max: self.max,
            }));
        }
        *n += 1;
        self.pending.insert(connection_id, source);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.done(&connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.done(&connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(addr: &str) -> Source {
        source_of(&addr.parse().unwrap()).unwrap()
    }

    #[test]
    fn addresses_count_by_host() {
        assert_eq!(
            source("/ip4/10.1.2.3/tcp/4710").to_string(),
            "10.1.2.3",
            "an IPv4 address is itself"
        );
        assert_eq!(
            source("/ip6/::ffff:10.1.2.3/tcp/4710"),
            source("/ip4/10.1.2.3/tcp/9"),
            "an IPv4-mapped address is its IPv4 address"
        );
        let a = source("/ip6/2001:db8:1:2:aaaa::1/tcp/4710");
        assert_eq!(a, source("/ip6/2001:db8:1:2:ffff:1:2:3/tcp/1"), "one /64");
        assert_ne!(a, source("/ip6/2001:db8:1:3::1/tcp/4710"), "another /64");
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            source("/ip4/10.1.2.3/udp/4710/quic-v1"),
            source("/ip6/2001:db8::9/udp/1/quic-v1"),
            "QUIC counts together, whatever its unproven source"
        );
        assert_ne!(
            source("/ip4/10.1.2.3/udp/4710/quic-v1"),
            source("/ip4/10.1.2.3/tcp/4710")
        );
        assert!(source_of(&"/dns4/example.org/tcp/1".parse().unwrap()).is_none());
        // Once established, a QUIC connection is its host's.
        assert_eq!(
            host_of(&"/ip4/10.1.2.3/udp/4710/quic-v1".parse().unwrap()),
            Some(source("/ip4/10.1.2.3/tcp/4710"))
        );
    }
}

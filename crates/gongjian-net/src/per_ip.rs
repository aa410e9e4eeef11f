//! A bound on the incoming connections still in their handshake from any
//! one IP address. The node takes 64 such connections at once; without
//! this, one host opening TCP connections and then saying nothing (each
//! waits out the handshake timeout) would hold all of them, and no member
//! could connect. With it, one address holds at most its share, and the
//! rest stay open to everyone else.

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

/// Refused: the address already has as many handshakes under way as it may.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {max} incoming connections in their handshake")]
pub(crate) struct TooManyFromOneAddress {
    ip: IpAddr,
    max: usize,
}

pub(crate) struct Behaviour {
    max: usize,
    pending: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
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

/// The IP address a multiaddr starts with, if any.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
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
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let n = self.per_ip.entry(ip).or_insert(0);
        if *n >= self.max {
            self.status.lock().expect("status lock").handshakes_refused += 1;
            tracing::debug!(%ip, max = self.max, "incoming connection refused: too many handshakes from one address");
            return Err(ConnectionDenied::new(TooManyFromOneAddress {
                ip,
                max: self.max,
            }));
        }
        *n += 1;
        self.pending.insert(connection_id, ip);
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

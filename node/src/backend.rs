//! Where the API's reads and writes run: on the daemon's sync thread (the
//! network hears of every write), or on a store a command opened itself
//! when no daemon runs. Both keep the merged view up to date, so the API
//! behaves the same either way.

use std::sync::{Arc, Mutex, RwLock};

use gongjian_engine::Replica;
use gongjian_identity::DocId;
use gongjian_net::{NetStatus, Node};
use gongjian_view::View;

use crate::api::ApiError;

#[derive(Clone)]
pub enum Backend {
    /// The daemon: the replica lives in the network's sync actor.
    Net(Arc<Node>),
    /// A command with the store to itself (no daemon running).
    Local {
        replica: Arc<Mutex<Replica>>,
        view: Arc<RwLock<View>>,
    },
}

impl Backend {
    /// A backend over a replica this process opened, with its view built.
    pub fn local(replica: Replica) -> (Backend, Arc<RwLock<View>>) {
        let view = Arc::new(RwLock::new(View::build(&replica)));
        (
            Backend::Local {
                replica: Arc::new(Mutex::new(replica)),
                view: view.clone(),
            },
            view,
        )
    }

    /// Runs `f` on the replica, off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Replica) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        match self {
            Backend::Net(node) => Ok(node.call(move |a| f(a.replica())).await?),
            Backend::Local { replica, .. } => {
                let replica = replica.clone();
                tokio::task::spawn_blocking(move || {
                    let mut r = replica.lock().map_err(|_| ApiError::lock())?;
                    Ok(f(&mut r))
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
            }
        }
    }

    /// Runs a write; the documents `f` returns are refreshed in the view
    /// (and, on the daemon, announced to peers) before this returns.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Replica) -> (T, Vec<DocId>) + Send + 'static,
    ) -> Result<T, ApiError> {
        match self {
            Backend::Net(node) => Ok(node.write(f).await?),
            Backend::Local { replica, view } => {
                let (replica, view) = (replica.clone(), view.clone());
                tokio::task::spawn_blocking(move || {
                    let mut r = replica.lock().map_err(|_| ApiError::lock())?;
                    let records = r.membership().len();
                    let (t, docs) = f(&mut r);
                    let mut v = view.write().map_err(|_| ApiError::lock())?;
                    if r.membership().len() != records {
                        v.records_changed(&r);
                    }
                    for d in &docs {
                        v.refresh(&r, d);
                    }
                    Ok(t)
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
            }
        }
    }

    /// The network's state; `None` when no daemon runs.
    pub fn net(&self) -> Option<(String, NetStatus)> {
        match self {
            Backend::Net(node) => Some((node.peer_id().to_string(), node.status())),
            Backend::Local { .. } => None,
        }
    }

    /// Gives the replica back (a local backend, once the API is done).
    pub fn into_replica(self) -> Option<Replica> {
        match self {
            Backend::Net(_) => None,
            Backend::Local { replica, .. } => Arc::into_inner(replica)?.into_inner().ok(),
        }
    }
}

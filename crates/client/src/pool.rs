//! A small pool of idle connections per server address.
//!
//! A call takes an idle connection (or opens one), uses it for one request or pipeline, and gives
//! it back only if the exchange finished cleanly: a connection whose reply was lost or timed out
//! may still carry a late reply, so it is dropped. At most `idle_max` connections are kept idle
//! per address; connections in use are not capped, so blocking commands never starve the others.

use std::sync::Mutex;
use std::time::Duration;

use crate::connection::Connection;
use crate::error::Result;

#[derive(Debug)]
pub(crate) struct Pool {
    address: String,
    idle: Mutex<Vec<Connection>>,
    idle_max: usize,
}

impl Pool {
    pub fn new(address: String, idle_max: usize) -> Pool {
        Pool { address, idle: Mutex::new(Vec::new()), idle_max }
    }

    /// An idle connection still open, or a new one.
    pub async fn get(&self, connect_timeout: Duration) -> Result<Connection> {
        loop {
            let idle = self.idle.lock().expect("pool lock").pop();
            match idle {
                Some(connection) if connection.is_reusable() => return Ok(connection),
                Some(_) => continue, // closed by the server while idle: drop it
                None => return Connection::connect(&self.address, connect_timeout).await,
            }
        }
    }

    /// Returns a connection that finished its exchange cleanly.
    pub fn put(&self, connection: Connection) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.idle_max {
            idle.push(connection);
        }
    }

    /// Drops every idle connection (after this address failed, they are likely dead too).
    pub fn clear(&self) {
        self.idle.lock().expect("pool lock").clear();
    }
}

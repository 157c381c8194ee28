//! HumanPing: the marketplace where AI agents hire humans for what software cannot do.
//!
//! One crate, one binary: the MCP server, the REST API and the embedded core (escrow ledger,
//! task lifecycle, routing) over SQLite or PostgreSQL. See the README's architecture section
//! for how the modules fit together.

pub mod auth;
pub mod domain;
pub mod http;
pub mod input;
pub mod ledger;
pub mod mcp;
pub mod payments;
pub mod sandbox;
pub mod service;
pub mod store;
pub mod web;

//! Black-box tests of the real `ingot` binary: started on free loopback ports, driven over
//! HTTP and its command line, stopped with SIGTERM and killed with SIGKILL.

mod support;

mod cli;
mod coap;
mod durability;
mod ingest;
mod mqtt;
mod ops;
mod query;
mod scale;
mod security;
mod sim;
mod tls;
mod ui;

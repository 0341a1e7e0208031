//! A scripted byte peer for the step functions' unit tests (feature `script`, never in a
//! release): reads come from a fixed input, writes are collected. The integration tests in
//! `tests/` use real peers.

use std::io::{Cursor, Read, Write};

/// A peer that sends a fixed input, then ends the stream, and keeps what it is sent.
#[derive(Debug)]
pub struct Script {
    input: Cursor<Vec<u8>>,
    /// Everything written to the peer.
    pub output: Vec<u8>,
}

/// A peer that will send `input`, then end the stream.
pub fn script(input: &[u8]) -> Script {
    Script {
        input: Cursor::new(input.to_vec()),
        output: Vec::new(),
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

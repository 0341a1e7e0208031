//! A scripted byte peer for the step functions' unit tests: reads come from a fixed input,
//! writes are collected. (The integration tests in `tests/` use real peers.)

use std::io::{Cursor, Read, Write};

pub(crate) struct Script {
    input: Cursor<Vec<u8>>,
    pub(crate) output: Vec<u8>,
}

/// A peer that will send `input`, then end the stream.
pub(crate) fn script(input: &[u8]) -> Script {
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

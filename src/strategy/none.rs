//! `none`: nothing protects the stock. Two buyers can read the same value and both sell it.

use std::io;

use super::Lock;

pub struct NoLock;

impl Lock for NoLock {
    fn acquire(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn release(&mut self) -> io::Result<()> {
        Ok(())
    }
}

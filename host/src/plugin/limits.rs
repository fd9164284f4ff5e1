//! What one plugin store may allocate: the [`ResourceLimiter`] of every
//! store.
//!
//! The memory cap alone is not enough: it bounds each linear memory, but a
//! hand-made component can instantiate many core modules, each with its own
//! memories and tables, and multiply the cap. So the number of core
//! instances, linear memories and tables per store is bounded too
//! ([`StoreCounts`]). The defaults are small multiples of what a real plugin
//! needs: a Rust plugin built for `wasm32-wasip2` with wit-bindgen creates
//! [`StoreCounts::RUST_WASIP2`] (measured on the real plugins by the e2e test
//! `stores_are_limited_to_a_few_instances_memories_and_tables`). A component
//! over a bound fails to instantiate, which [`super::Plugin::load`] reports as
//! a refused load.
//!
//! Growth past the memory cap traps instead of returning -1 to the guest: a
//! Rust guest would abort anyway, and a trap lets the host say why (the
//! limiter remembers the size that was asked for).

use wasmtime::ResourceLimiter;

/// Elements one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// How many core instances, linear memories and tables one store may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounts {
    pub instances: usize,
    pub memories: usize,
    pub tables: usize,
}

impl StoreCounts {
    /// What a Rust `wasm32-wasip2` plugin (wit-bindgen) needs.
    pub const RUST_WASIP2: StoreCounts = StoreCounts {
        instances: 3,
        memories: 1,
        tables: 2,
    };
}

impl Default for StoreCounts {
    /// Room for several times a Rust plugin's instances and tables, and
    /// for a second memory-owning module (such as a WASI adapter).
    fn default() -> Self {
        StoreCounts {
            instances: 16,
            memories: 2,
            tables: 8,
        }
    }
}

/// The limiter of one store.
pub(crate) struct StoreCaps {
    /// Largest size one linear memory may grow to, in bytes.
    memory_bytes: usize,
    counts: StoreCounts,
    /// The size the last refused growth asked for, for the error message.
    refused: Option<usize>,
}

impl StoreCaps {
    pub(crate) fn new(memory_bytes: usize, counts: StoreCounts) -> Self {
        Self {
            memory_bytes,
            counts,
            refused: None,
        }
    }

    /// Forgets a refusal before a new call.
    pub(crate) fn reset(&mut self) {
        self.refused = None;
    }

    /// The size a refused memory growth asked for during the last call.
    pub(crate) fn refused(&self) -> Option<usize> {
        self.refused
    }
}

impl ResourceLimiter for StoreCaps {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused = Some(desired);
            return Err(wasmtime::Error::msg("memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        self.counts.instances
    }

    fn tables(&self) -> usize {
        self.counts.tables
    }

    fn memories(&self) -> usize {
        self.counts.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_counts_leave_room_for_a_rust_plugin() {
        let (rust, default) = (StoreCounts::RUST_WASIP2, StoreCounts::default());
        assert!(default.instances >= 2 * rust.instances);
        assert!(default.memories > rust.memories);
        assert!(default.tables >= 2 * rust.tables);
    }

    #[test]
    fn the_limiter_reports_the_counts_it_was_given() {
        let caps = StoreCaps::new(1 << 20, StoreCounts::RUST_WASIP2);
        assert_eq!(caps.instances(), 3);
        assert_eq!(caps.memories(), 1);
        assert_eq!(caps.tables(), 2);
    }

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut caps = StoreCaps::new(1 << 20, StoreCounts::default());
        assert!(caps.memory_growing(0, 1 << 20, None).unwrap());
        assert!(caps.memory_growing(1 << 20, 2 << 20, None).is_err());
        assert_eq!(caps.refused(), Some(2 << 20));
        caps.reset();
        assert_eq!(caps.refused(), None);
    }
}

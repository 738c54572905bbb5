//! The sandbox of one call: a fresh store with fuel, an epoch deadline and memory and table caps
//! scaled to the input, and the calls into the module through it, with a failed call explained
//! (which limit, which trap, the guest's panic message).

use std::time::Duration;

use kr_policy_abi::{exports, PanicMessage};
use wasmtime::{Instance, Module, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};

use super::{PolicyEngine, PolicyError, PolicyErrorKind, TICK};

/// Resource limits for one call into a module.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Fuel (≈ wasm instructions) for a call, plus `fuel_per_input_byte` for each byte of input.
    pub fuel: u64,
    pub fuel_per_input_byte: u64,
    /// Wall-clock deadline for a call, plus `deadline_per_input_mib` for each MiB of input.
    pub deadline: Duration,
    pub deadline_per_input_mib: Duration,
    /// Linear memory cap, or `memory_per_input_byte` × input size when that is larger (a module
    /// must at least hold the bundle and its parsed form).
    pub memory_bytes: usize,
    pub memory_per_input_byte: usize,
    pub table_elements: usize,
    /// The largest result a module may return.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 400_000_000,
            fuel_per_input_byte: 2_000,
            // Fuel is the deterministic bound on a module's work; the wall-clock deadline only
            // catches what fuel cannot (a host stalled on a loaded machine), so it is generous
            // with large bundles: a 10,000-object bundle (~9 MiB) gets ~10 s.
            deadline: Duration::from_millis(1000),
            deadline_per_input_mib: Duration::from_millis(1000),
            memory_bytes: 64 << 20,
            memory_per_input_byte: 12,
            table_elements: 10_000,
            max_output_bytes: 8 << 20,
        }
    }
}

impl Limits {
    fn for_input(&self, len: usize) -> (u64, Duration, usize) {
        let fuel = self
            .fuel
            .saturating_add(self.fuel_per_input_byte.saturating_mul(len as u64));
        let deadline = self.deadline
            + self
                .deadline_per_input_mib
                .mul_f64(len as f64 / (1 << 20) as f64);
        let memory = self
            .memory_bytes
            .max(self.memory_per_input_byte.saturating_mul(len));
        (fuel, deadline, memory)
    }
}

/// A store's limits (wasmtime's [`StoreLimits`]), and what they refused: a module that hits a cap
/// then fails with an error that says which, from the record rather than the error's text.
pub(super) struct Sandbox {
    limits: StoreLimits,
    refused: Option<Refused>,
}

#[derive(Debug, Clone, Copy)]
enum Refused {
    Memory { desired: usize },
    Table { desired: usize },
}

/// The trap a refused grow turns into; the record in [`Sandbox`] says what it was.
#[derive(Debug, thiserror::Error)]
#[error("a sandbox limit refused to grow {0}")]
struct LimitReached(&'static str);

impl ResourceLimiter for Sandbox {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.limits.memory_growing(current, desired, maximum)? {
            return Ok(true);
        }
        self.refused = Some(Refused::Memory { desired });
        Err(LimitReached("memory").into())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.limits.table_growing(current, desired, maximum)? {
            return Ok(true);
        }
        self.refused = Some(Refused::Table { desired });
        Err(LimitReached("a table").into())
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// A store with its limits, and the instance once it exists.
pub(super) struct Call {
    pub(super) store: Store<Sandbox>,
    instance: Option<Instance>,
    fuel: u64,
    deadline: Duration,
    memory_cap: usize,
}

impl Call {
    pub(super) fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        label: &str,
        name: &str,
    ) -> Result<wasmtime::TypedFunc<P, R>, PolicyError> {
        let instance = self.instance.ok_or_else(|| {
            PolicyError::new(label, PolicyErrorKind::Instantiate, "is not instantiated")
        })?;
        instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| PolicyError::new(label, PolicyErrorKind::Export, format!("{name}: {e}")))
    }

    fn memory(&mut self, label: &str) -> Result<wasmtime::Memory, PolicyError> {
        self.instance
            .and_then(|i| i.get_memory(&mut self.store, "memory"))
            .ok_or_else(|| {
                PolicyError::new(label, PolicyErrorKind::Export, "does not export `memory`")
            })
    }
}

impl PolicyEngine {
    pub(super) fn instantiate(
        &self,
        label: &str,
        module: &Module,
        input_len: usize,
    ) -> Result<Call, PolicyError> {
        let (fuel, deadline, memory_cap) = self.limits.for_input(input_len);
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_cap)
            .table_elements(self.limits.table_elements)
            .instances(1)
            .memories(1)
            .tables(4)
            .build();
        let sandbox = Sandbox {
            limits,
            refused: None,
        };
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|s| s);
        store
            .set_fuel(fuel)
            .map_err(|e| PolicyError::new(label, PolicyErrorKind::Instantiate, e.to_string()))?;
        store.set_epoch_deadline((deadline.as_millis() / TICK.as_millis()).max(1) as u64);
        store.epoch_deadline_trap();
        let mut call = Call {
            store,
            instance: None,
            fuel,
            deadline,
            memory_cap,
        };
        // Start functions and data segments run here, under the same limits.
        let instance = Instance::new(&mut call.store, module, &[]).map_err(|e| {
            let mut e = self.call_error(label, &mut call, e);
            if e.kind == PolicyErrorKind::Trap {
                e.kind = PolicyErrorKind::Instantiate;
                e.message = format!("cannot be instantiated: {}", e.message);
            }
            e
        })?;
        call.instance = Some(instance);
        Ok(call)
    }

    /// Calls an export that returns a packed (ptr << 32 | len) result, passing `input` (its
    /// parts, one after another) through `kr_alloc` first when given, and copies the result out
    /// of the module's memory.
    pub(super) fn call_packed(
        &self,
        label: &str,
        call: &mut Call,
        export: &str,
        input: Option<&[&[u8]]>,
    ) -> Result<Vec<u8>, PolicyError> {
        let err = |kind, msg: String| PolicyError::new(label, kind, msg);
        let memory = call.memory(label)?;
        let packed = match input {
            None => {
                let f = call.func::<(), i64>(label, export)?;
                f.call(&mut call.store, ())
                    .map_err(|e| self.call_error(label, call, e))?
            }
            Some(parts) => {
                let total: usize = parts.iter().map(|part| part.len()).sum();
                let len = i32::try_from(total).map_err(|_| {
                    err(
                        PolicyErrorKind::Output,
                        format!("input of {total} bytes is too large for a 32-bit module"),
                    )
                })?;
                let alloc = call.func::<i32, i32>(label, "kr_alloc")?;
                let ptr = alloc
                    .call(&mut call.store, len)
                    .map_err(|e| self.call_error(label, call, e))?;
                let buffer = memory
                    .data_mut(&mut call.store)
                    .get_mut(ptr as u32 as usize..)
                    .and_then(|rest| rest.get_mut(..total))
                    .ok_or_else(|| err(PolicyErrorKind::Output, format!("kr_alloc({len}) returned {:#x}, which is not a buffer of that size in its memory", ptr as u32)))?;
                let mut at = 0;
                for part in parts {
                    buffer[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                let f = call.func::<(i32, i32), i64>(label, export)?;
                f.call(&mut call.store, (ptr, len))
                    .map_err(|e| self.call_error(label, call, e))?
            }
        };
        let (ptr, len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        if len > self.limits.max_output_bytes {
            return Err(err(
                PolicyErrorKind::Output,
                format!(
                    "{export} returned {len} bytes, more than the {} byte limit",
                    self.limits.max_output_bytes
                ),
            ));
        }
        let data = memory.data(&call.store);
        let out = ptr
            .checked_add(len)
            .and_then(|end| data.get(ptr..end))
            .ok_or_else(|| {
                err(
                    PolicyErrorKind::Output,
                    format!(
                        "{export} returned {len} bytes at {ptr:#x}, outside its {} byte memory",
                        data.len()
                    ),
                )
            })?;
        Ok(out.to_vec())
    }

    /// Turns a failed call into an error that says what the module did.
    pub(super) fn call_error(
        &self,
        label: &str,
        call: &mut Call,
        e: wasmtime::Error,
    ) -> PolicyError {
        let err = |kind, msg: String| PolicyError::new(label, kind, msg);
        if let Some(trap) = e.downcast_ref::<Trap>() {
            return match trap {
                Trap::OutOfFuel => err(
                    PolicyErrorKind::OutOfFuel,
                    format!(
                        "ran out of fuel (limit {} units); is it looping?",
                        call.fuel
                    ),
                ),
                Trap::Interrupt => err(
                    PolicyErrorKind::Deadline,
                    format!("did not finish within its {:?} deadline", call.deadline),
                ),
                Trap::StackOverflow => err(
                    PolicyErrorKind::Trap,
                    "overflowed its stack (unbounded recursion?)".into(),
                ),
                other => {
                    let panic = self
                        .panic_message(call)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    err(PolicyErrorKind::Trap, format!("trapped ({other}){panic}"))
                }
            };
        }
        match call.store.data().refused {
            Some(Refused::Memory { desired }) => {
                return err(
                    PolicyErrorKind::Memory,
                    format!(
                        "tried to grow its memory to {} MiB, beyond the {} MiB cap",
                        desired >> 20,
                        call.memory_cap >> 20
                    ),
                )
            }
            Some(Refused::Table { desired }) => {
                return err(
                    PolicyErrorKind::Memory,
                    format!(
                        "tried to grow a table to {desired} elements, beyond the cap of {}",
                        self.limits.table_elements
                    ),
                )
            }
            None => {}
        }
        let text = format!("{e:#}");
        err(PolicyErrorKind::Trap, format!("failed: {text}"))
    }

    /// The SDK's panic hook leaves the message for `kr_panic_message`; modules without it say nothing.
    fn panic_message(&self, call: &mut Call) -> Option<String> {
        let f = call
            .instance?
            .get_typed_func::<(), i64>(&mut call.store, exports::PANIC_MESSAGE)
            .ok()?;
        // A little fresh fuel and time: the store's budget may be what ran out.
        call.store.set_fuel(10_000_000).ok()?;
        call.store
            .set_epoch_deadline((200 / TICK.as_millis()) as u64);
        let packed = f.call(&mut call.store, ()).ok()? as u64;
        let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        let memory = call.instance?.get_memory(&mut call.store, "memory")?;
        let bytes = memory
            .data(&call.store)
            .get(ptr..ptr.checked_add(len.min(64 << 10))?)?;
        let answer: PanicMessage = serde_json::from_slice(bytes).ok()?;
        Some(answer.message).filter(|m| !m.is_empty())
    }
}

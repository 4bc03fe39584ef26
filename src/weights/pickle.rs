//! A restricted unpickler for the `data.pkl` of `torch.save` checkpoints.
//!
//! Python's pickle is a program: GLOBAL names any importable callable and REDUCE calls it, so
//! loading an untrusted `.bin` with `pickle.load` can run anything. This reader is a data
//! parser instead. It knows the opcodes torch.save (protocol 2, and protocol 4's framing)
//! emits for a state dict, and the handful of globals a state dict names; every "call" is
//! interpreted here as building a tensor description or a dict. Any other opcode or global is
//! refused with an error that names it, before anything else happens. Nothing is executed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The callables a state-dict pickle may name. Anything else is refused at GLOBAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    /// `torch.<X>Storage`: only ever an element of a persistent id, never called.
    Storage(StorageType),
}

/// torch's typed-storage classes: the element type of a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    Half,
    Float,
    BFloat16,
    Double,
    Long,
    Int,
    Short,
    Char,
    Byte,
    Bool,
}

impl StorageType {
    fn from_name(name: &str) -> Option<StorageType> {
        Some(match name {
            "HalfStorage" => StorageType::Half,
            "FloatStorage" => StorageType::Float,
            "BFloat16Storage" => StorageType::BFloat16,
            "DoubleStorage" => StorageType::Double,
            "LongStorage" => StorageType::Long,
            "IntStorage" => StorageType::Int,
            "ShortStorage" => StorageType::Short,
            "CharStorage" => StorageType::Char,
            "ByteStorage" => StorageType::Byte,
            "BoolStorage" => StorageType::Bool,
            _ => return None,
        })
    }

    /// The safetensors spelling of the element type.
    pub fn dtype_name(self) -> &'static str {
        match self {
            StorageType::Half => "F16",
            StorageType::Float => "F32",
            StorageType::BFloat16 => "BF16",
            StorageType::Double => "F64",
            StorageType::Long => "I64",
            StorageType::Int => "I32",
            StorageType::Short => "I16",
            StorageType::Char => "I8",
            StorageType::Byte => "U8",
            StorageType::Bool => "BOOL",
        }
    }

    pub fn element_size(self) -> usize {
        match self {
            StorageType::Double | StorageType::Long => 8,
            StorageType::Float | StorageType::Int => 4,
            StorageType::Half | StorageType::BFloat16 | StorageType::Short => 2,
            StorageType::Char | StorageType::Byte | StorageType::Bool => 1,
        }
    }
}

/// A storage named by a persistent id: `('storage', torch.HalfStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub dtype: StorageType,
    /// Entry `data/<key>` of the zip.
    pub key: String,
    pub numel: usize,
}

/// What `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes (in elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

type Dict = Rc<RefCell<Vec<(Value, Value)>>>;

/// Pickle values that can occur in a state dict. Containers are shared (`Rc`) so that a
/// memoised object fetched again is the same object, as in Python.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Dict),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(true) => "True",
            Value::Bool(false) => "False",
            Value::Int(_) => "an int",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class or function",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// The state dict of a `data.pkl`: (key, tensor) in pickle order.
pub fn load_state_dict(pkl: &[u8]) -> Result<Vec<(String, TensorRef)>, String> {
    let top = Unpickler { data: pkl, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }.run()?;
    let Value::Dict(d) = top else {
        return Err(format!("the pickle holds {}, not a state dict", top.kind()));
    };
    let items = d.borrow();
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items.iter() {
        let Value::Str(key) = k else {
            return Err(format!("state-dict key is {}, not a string", k.kind()));
        };
        match v {
            Value::Tensor(t) => out.push((key.to_string(), (**t).clone())),
            other => return Err(format!("state-dict entry '{key}' is {}, not a tensor", other.kind())),
        }
    }
    Ok(out)
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    fn run(mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let op = self.byte().map_err(|_| "the pickle ends without STOP (truncated data.pkl?)".to_string())?;
            self.step(op).map_err(|e| format!("data.pkl byte {at} (opcode {}): {e}", opcode_name(op)))?;
            if op == b'.' {
                return self.pop();
            }
        }
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => {
                let proto = self.byte()?;
                if proto > 5 {
                    return Err(format!("pickle protocol {proto} is newer than any Python writes"));
                }
            }
            0x95 => {
                self.take(8)?; // FRAME: a length hint for buffered readers; the data is inline.
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let g = resolve_global(&module, &name)?;
                self.stack.push(Value::Global(g));
            }
            0x93 => {
                let name = self.pop_str()?;
                let module = self.pop_str()?;
                let g = resolve_global(&module, &name)?;
                self.stack.push(Value::Global(g));
            }
            b'q' => {
                let i = self.byte()? as u32;
                self.memoize(i)?;
            }
            b'r' => {
                let i = self.u32()?;
                self.memoize(i)?;
            }
            0x94 => {
                let i = self.memo.len() as u32;
                self.memoize(i)?;
            }
            b'h' => {
                let i = self.byte()? as u32;
                self.fetch(i)?;
            }
            b'j' => {
                let i = self.u32()?;
                self.fetch(i)?;
            }
            b'(' => self.marks.push(self.stack.len()),
            b'}' => self.stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.stack.push(Value::Dict(Rc::new(RefCell::new(pairs))));
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.top_dict()?.borrow_mut().push((k, v));
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.top_dict()?.borrow_mut().extend(pairs);
            }
            b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            b']' => self.stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
            b'l' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::List(Rc::new(RefCell::new(items))));
            }
            b'a' => {
                let v = self.pop()?;
                self.top_list()?.borrow_mut().push(v);
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.top_list()?.borrow_mut().extend(items);
            }
            b'J' => {
                let b = self.take(4)?;
                self.stack.push(Value::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64));
            }
            b'K' => {
                let b = self.byte()?;
                self.stack.push(Value::Int(b as i64));
            }
            b'M' => {
                let b = self.take(2)?;
                self.stack.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
            }
            0x8a => {
                let n = self.byte()? as usize;
                if n > 8 {
                    return Err(format!("a {n}-byte integer does not fit in 64 bits"));
                }
                let b = self.take(n)?;
                let mut v: i64 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= (x as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n); // two's complement of an n-byte number
                }
                self.stack.push(Value::Int(v));
            }
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'N' => self.stack.push(Value::None),
            b'X' => {
                let n = self.u32()? as usize;
                let s = self.utf8(n)?;
                self.stack.push(Value::Str(s));
            }
            0x8c => {
                let n = self.byte()? as usize;
                let s = self.utf8(n)?;
                self.stack.push(Value::Str(s));
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = persistent_storage(&pid)?;
                self.stack.push(Value::Storage(Rc::new(storage)));
            }
            b'R' => {
                let args = self.pop()?;
                let func = self.pop()?;
                let v = reduce(&func, &args)?;
                self.stack.push(v);
            }
            b'b' => {
                // BUILD sets object state: torch.save uses it only to attach `_metadata`
                // (per-module version numbers) to the state dict's OrderedDict. Not needed.
                let _state = self.pop()?;
                match self.stack.last() {
                    Some(Value::Dict(_)) => {}
                    Some(v) => return Err(format!("BUILD on {}; only a state dict's OrderedDict takes state", v.kind())),
                    None => return Err("stack underflow".into()),
                }
            }
            b'.' => {
                if self.stack.len() != 1 || !self.marks.is_empty() {
                    return Err(format!("STOP with {} values and {} marks left; expected one value", self.stack.len(), self.marks.len()));
                }
            }
            _ => return Err("refused: t2v reads only the opcodes torch.save writes for a state dict".into()),
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("the pickle ends mid-opcode (truncated data.pkl?)")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<Rc<str>, String> {
        let b = self.take(n)?;
        std::str::from_utf8(b).map(Rc::from).map_err(|_| "string is not valid UTF-8".to_string())
    }

    /// GLOBAL's newline-terminated operands.
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&c| c == b'\n').ok_or("GLOBAL operand has no newline (truncated data.pkl?)")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL operand is not UTF-8".to_string())?.to_string();
        self.pos += n + 1;
        Ok(s)
    }

    /// Python's unpickler starts a fresh stack at each MARK; popping below it is an error.
    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".to_string())
    }

    fn pop_str(&mut self) -> Result<Rc<str>, String> {
        match self.pop()? {
            Value::Str(s) => Ok(s),
            v => Err(format!("expected a string, found {}", v.kind())),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("no MARK to pop to")?;
        if m > self.stack.len() {
            return Err("MARK above the stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    fn top_dict(&self) -> Result<&Dict, String> {
        match self.stack.last() {
            Some(Value::Dict(d)) => Ok(d),
            Some(v) => Err(format!("expected a dict below the items, found {}", v.kind())),
            None => Err("stack underflow".into()),
        }
    }

    fn top_list(&self) -> Result<&Rc<RefCell<Vec<Value>>>, String> {
        match self.stack.last() {
            Some(Value::List(l)) => Ok(l),
            Some(v) => Err(format!("expected a list below the items, found {}", v.kind())),
            None => Err("stack underflow".into()),
        }
    }

    fn memoize(&mut self, i: u32) -> Result<(), String> {
        let v = self.stack.last().ok_or("memoizing an empty stack")?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn fetch(&mut self, i: u32) -> Result<(), String> {
        let v = self.memo.get(&i).ok_or_else(|| format!("memo slot {i} is empty"))?.clone();
        self.stack.push(v);
        Ok(())
    }
}

fn resolve_global(module: &str, name: &str) -> Result<Global, String> {
    let g = match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("torch", n) => StorageType::from_name(n).map(Global::Storage),
        _ => None,
    };
    g.ok_or_else(|| {
        format!(
            "refused: forbidden global '{module}.{name}' (t2v only rebuilds tensors from a state dict and never \
             calls anything else; convert this checkpoint to safetensors in an environment you trust)"
        )
    })
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of items for a dict".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn as_index(v: &Value, what: &str) -> Result<usize, String> {
    match v {
        Value::Int(i) if *i >= 0 => usize::try_from(*i).map_err(|_| format!("{what} {i} is too large")),
        v => Err(format!("{what} should be a non-negative int, found {}", if let Value::Int(i) = v { i.to_string() } else { v.kind().into() })),
    }
}

fn as_indices(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(t) => t.iter().map(|x| as_index(x, what)).collect(),
        v => Err(format!("{what} should be a tuple, found {}", v.kind())),
    }
}

/// `('storage', torch.HalfStorage, '0', 'cpu', 12)` → the storage it names.
fn persistent_storage(pid: &Value) -> Result<StorageRef, String> {
    let Value::Tuple(t) = pid else {
        return Err(format!("persistent id is {}, expected a ('storage', ...) tuple", pid.kind()));
    };
    match t.as_slice() {
        [Value::Str(tag), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_location), numel] if &**tag == "storage" => {
            Ok(StorageRef { dtype: *dtype, key: key.to_string(), numel: as_index(numel, "storage size")? })
        }
        _ => Err("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)".into()),
    }
}

/// The only calls a state dict makes, interpreted as data.
fn reduce(func: &Value, args: &Value) -> Result<Value, String> {
    let Value::Global(g) = func else {
        return Err(format!("REDUCE on {}, not an allowed class or function", func.kind()));
    };
    let Value::Tuple(args) = args else {
        return Err(format!("REDUCE arguments are {}, not a tuple", args.kind()));
    };
    match (g, args.as_slice()) {
        (Global::OrderedDict, []) => Ok(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        (Global::RebuildTensorV2, [Value::Storage(s), offset, size, stride, _requires_grad, _hooks, ..]) if args.len() <= 7 => {
            let size = as_indices(size, "tensor size")?;
            let stride = as_indices(stride, "tensor stride")?;
            if size.len() != stride.len() {
                return Err(format!("tensor size {size:?} and stride {stride:?} differ in rank"));
            }
            Ok(Value::Tensor(Rc::new(TensorRef { storage: (**s).clone(), offset: as_index(offset, "storage offset")?, size, stride })))
        }
        // (tensor, requires_grad, backward_hooks): a Parameter is its tensor.
        (Global::RebuildParameter, [t @ Value::Tensor(_), _, _]) => Ok(t.clone()),
        (g, _) => Err(format!("unexpected call {g:?} with {} argument(s)", args.len())),
    }
}

/// Names for error messages, so a refusal says which opcode it met.
fn opcode_name(op: u8) -> String {
    let name = match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        _ => "unknown",
    };
    format!("{name} 0x{op:02x}")
}

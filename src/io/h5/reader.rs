// SPDX-License-Identifier: MIT OR Apache-2.0
//! The subset of HDF5 that h5py writes for Keras with `libver="earliest"`:
//! superblock 0 (or 1), version 1 object headers, groups as symbol tables
//! (a version 1 B-tree, symbol-table nodes and a local heap), contiguous or
//! compact datasets, and attributes whose strings sit in a global heap.
//!
//! Every field is read through a bounds-checked [`Cursor`], every address
//! is checked against the file before it is followed, no datatype is
//! parsed past its top level (nested types are described, never walked),
//! nothing recurses, every loop is bounded (by the file's bytes, by the
//! nodes already seen, or by a work budget), and nothing is allocated that
//! the file's bytes do not back.

use std::collections::HashSet;

/// A result whose error is a reason, for the caller to prefix with the file.
pub(super) type Res<T> = std::result::Result<T, String>;

/// The first bytes of every HDF5 file.
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
/// HDF5's "undefined address": storage never allocated.
const UNDEFINED: u64 = u64::MAX;
/// Messages one object header may hold, all chunks together.
const MAX_MESSAGES: usize = 4096;
/// Chunks (the first and its continuations) one object header may have.
const MAX_CHUNKS: usize = 64;
/// How deep a group's B-tree may be (each level multiplies its entries by
/// up to 2K, 32 by default: 16 levels hold more than any file has bytes).
const MAX_BTREE_LEVEL: u8 = 16;
/// HDF5's own limit on a dataspace's rank.
const MAX_RANK: usize = 32;
/// Steps (messages, B-tree entries, heap objects) any file may cost, on
/// top of one per byte: a bound on time for headers that point at the
/// same structures many times over.
const BASE_WORK: u64 = 1 << 24;

/// A bounds-checked, little-endian reader over a byte slice.
struct Cursor<'a> {
    /// The bytes read.
    bytes: &'a [u8],
    /// Where the next read starts.
    pos: usize,
}

/// `u8()`, `u16()`, ...: the next little-endian integer of that type.
macro_rules! integers {
    ($($int:ident),*) => {$(
        /// The next little-endian integer.
        fn $int(&mut self) -> Res<$int> {
            self.array().map($int::from_le_bytes)
        }
    )*};
}

impl<'a> Cursor<'a> {
    integers!(u8, u16, u32, u64);

    /// A cursor at the start of `bytes`.
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// A cursor at `addr` of the file, which must lie within it.
    fn at(bytes: &'a [u8], addr: u64) -> Res<Self> {
        let pos = usize::try_from(addr).ok().filter(|&p| p <= bytes.len());
        let pos = pos
            .ok_or_else(|| format!("address {addr} is beyond the file's {} bytes", bytes.len()))?;
        Ok(Cursor { bytes, pos })
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let (pos, len) = (self.pos, self.bytes.len());
        let span = pos.checked_add(n).and_then(|end| self.bytes.get(pos..end));
        let span = span.ok_or_else(|| format!("{n} bytes wanted at offset {pos} of {len}"))?;
        self.pos = pos.saturating_add(n);
        Ok(span)
    }

    /// Skips `n` bytes.
    fn skip(&mut self, n: usize) -> Res<()> {
        self.take(n).map(|_| ())
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| format!("{N} bytes wanted"))
    }

    /// The bytes not yet read.
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    /// Checks a structure's 4-byte signature (`TREE`, `SNOD`, ...) and
    /// that its version (the byte after it) is `version`.
    fn signature(&mut self, expected: &[u8; 4], version: u8) -> Res<()> {
        let found = self.array::<4>()?;
        if &found != expected {
            let name = String::from_utf8_lossy(expected);
            return Err(format!("'{name}' expected, found {found:02x?}"));
        }
        match self.u8()? {
            v if v == version => Ok(()),
            v => Err(format!("version {v}: only {version}")),
        }
    }
}

/// One header message: its flags (bit 1: stored elsewhere) and its bytes.
#[derive(Debug, Clone, Copy)]
struct Message<'a> {
    /// The message's flags.
    flags: u8,
    /// The message's data.
    data: &'a [u8],
}

impl<'a> Message<'a> {
    /// The data, unless the message is shared (kept in another object,
    /// which h5py does not do for Keras).
    fn local(self, what: &str) -> Res<&'a [u8]> {
        match self.flags & 2 {
            0 => Ok(self.data),
            _ => Err(format!("a shared {what} message is not supported")),
        }
    }
}

/// A group's symbol table: its B-tree and the local heap of its names.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    /// The root node of the group's B-tree.
    btree: u64,
    /// The local heap holding its link names.
    heap: u64,
}

/// The messages of one object header that this reader uses.
#[derive(Debug, Default)]
pub(super) struct Object<'a> {
    /// The symbol table, for a group.
    group: Option<Group>,
    /// Link messages: a group of the newer kind (libver "latest").
    new_style_group: bool,
    /// The dataspace, for a dataset.
    dataspace: Option<Message<'a>>,
    /// The datatype, for a dataset.
    datatype: Option<Message<'a>>,
    /// The data layout: present on datasets only.
    layout: Option<Message<'a>>,
    /// The attribute messages.
    attributes: Vec<Message<'a>>,
}

impl Object<'_> {
    /// Whether the object is a dataset (has a data layout).
    pub(super) fn is_dataset(&self) -> bool {
        self.layout.is_some()
    }

    /// The group's symbol table (`None` for another object); an error for
    /// a group of the newer kind.
    pub(super) fn as_group(&self) -> Res<Option<Group>> {
        if self.group.is_none() && self.new_style_group {
            return Err(
                "a group of link messages (libver='latest') is not supported: only \
                        symbol-table groups, as Keras writes them"
                    .into(),
            );
        }
        Ok(self.group)
    }
}

/// A datatype, read to its top level only; its size is kept apart.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Type {
    /// A fixed-point integer without padding bits: signed, big-endian.
    Int(bool, bool),
    /// An IEEE float of 2, 4 or 8 bytes: big-endian.
    Float(bool),
    /// Opaque bytes (h5py's way of storing bfloat16).
    Opaque,
    /// A fixed-length string.
    FixedString,
    /// A variable-length string (its values live in a global heap).
    VlenString,
    /// Any other type (compound, array, enum, sequence, ...), described.
    Other(String),
}

impl Type {
    /// A short description of values of `size` bytes: numpy's name for
    /// plain numbers.
    pub(super) fn describe(&self, size: u64) -> String {
        let bits = size.saturating_mul(8);
        match self {
            Type::Int(signed, _) => format!("{}int{bits}", if *signed { "" } else { "u" }),
            Type::Float(_) => format!("float{bits}"),
            Type::Opaque => format!("opaque of {size} bytes"),
            Type::FixedString => format!("string of {size} bytes"),
            Type::VlenString => "variable-length string".into(),
            Type::Other(what) => what.clone(),
        }
    }
}

/// A datatype message: its type and the size of one element (not 0).
fn parse_type(data: &[u8]) -> Res<(Type, u64)> {
    let mut c = Cursor::new(data);
    let class = c.u8()? & 0x0f;
    let bits = c.array::<3>()?;
    let size = c.u32()?;
    if size == 0 {
        return Err("a datatype of 0 bytes".into());
    }
    let big = bits[0] & 1 != 0;
    let unusual = |what: &str| Type::Other(format!("{what} of {size} bytes"));
    let kind = match class {
        0 => match (c.u16()?, c.u16()?) {
            (0, precision) if u64::from(precision) == u64::from(size) * 8 => {
                Type::Int(bits[0] & 8 != 0, big)
            }
            _ => unusual("an integer with padding bits"),
        },
        1 => {
            let (offset, precision) = (c.u16()?, c.u16()?);
            let [exp_at, exp_bits, mantissa_at, mantissa_bits] = c.array::<4>()?;
            // (sign bit, exponent at, exponent bits, mantissa bits, bias) of IEEE 754.
            let ieee = match size {
                2 => Some((15, 10, 5, 10, 15)),
                4 => Some((31, 23, 8, 23, 127)),
                8 => Some((63, 52, 11, 52, 1023)),
                _ => None,
            };
            let layout = (bits[1], exp_at, exp_bits, mantissa_bits, c.u32()?);
            // Bit 6: VAX order; bits 1-3: padding; bits 4-5 = 2: implied leading 1.
            let plain = bits[0] & 0x4e == 0 && (bits[0] >> 4) & 3 == 2;
            let whole = offset == 0 && u64::from(precision) == u64::from(size) * 8;
            if ieee == Some(layout) && plain && whole && mantissa_at == 0 {
                Type::Float(big)
            } else {
                unusual("a float of a layout other than IEEE 754")
            }
        }
        3 => Type::FixedString,
        5 => Type::Opaque,
        9 if bits[0] & 0x0f == 1 => Type::VlenString,
        9 => unusual("a variable-length sequence"),
        2 => unusual("a time"),
        4 => unusual("a bitfield"),
        6 => unusual("a compound"),
        7 => unusual("a reference"),
        8 => unusual("an enum"),
        10 => unusual("an array"),
        other => unusual(&format!("a datatype of class {other}")),
    };
    Ok((kind, u64::from(size)))
}

/// A dataspace message's dimensions (`[]` for a scalar).
fn parse_dims(data: &[u8]) -> Res<Vec<u64>> {
    let mut c = Cursor::new(data);
    let (version, rank, _flags) = (c.u8()?, usize::from(c.u8()?), c.u8()?);
    match version {
        1 => c.skip(5)?,
        2 if c.u8()? == 2 => return Err("a null dataspace (no elements at all)".into()),
        2 => {}
        v => return Err(format!("a dataspace message of version {v}")),
    }
    if rank > MAX_RANK {
        return Err(format!("a rank of {rank}: at most {MAX_RANK}"));
    }
    (0..rank).map(|_| c.u64()).collect()
}

/// The number of elements of a shape.
fn element_count(dims: &[u64]) -> Res<u64> {
    let count = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    count.ok_or_else(|| format!("a shape of {dims:?} overflows"))
}

/// An attribute message's name (without its NUL), datatype, dataspace
/// and value.
fn parse_attribute(data: &[u8]) -> Res<[&[u8]; 4]> {
    let mut c = Cursor::new(data);
    let (version, flags) = (c.u8()?, c.u8()?);
    if !(1..=3).contains(&version) || (version > 1 && flags != 0) {
        return Err(format!(
            "an attribute message of version {version}, flags {flags}"
        ));
    }
    let sizes = [c.u16()?, c.u16()?, c.u16()?].map(usize::from);
    if version == 3 {
        c.skip(1)?; // the name's character set
    }
    let mut parts = [&[][..]; 4];
    for (part, size) in parts.iter_mut().zip(sizes) {
        // Version 1 pads each part to a multiple of 8 bytes.
        let span = c.take(if version == 1 {
            size.div_ceil(8) * 8
        } else {
            size
        })?;
        *part = span.get(..size).unwrap_or(span);
    }
    parts[0] = parts[0].split(|&b| b == 0).next().unwrap_or(&[]);
    parts[3] = c.rest();
    Ok(parts)
}

/// A dataset's shape, type and raw bytes (exactly its elements' bytes).
pub(super) struct Dataset<'a> {
    /// The shape (`[]` for a scalar).
    pub(super) dims: Vec<u64>,
    /// The element type, and the size of one element in bytes.
    pub(super) dtype: (Type, u64),
    /// The elements, as stored.
    pub(super) data: &'a [u8],
}

/// Reads objects out of a file's bytes.
pub(super) struct Reader<'a> {
    /// The whole file.
    bytes: &'a [u8],
    /// B-tree and symbol-table nodes already listed: reaching one twice is
    /// a cycle (or a group linked twice), and each is paid for once.
    seen: HashSet<u64>,
    /// Steps left before the file is refused as too costly.
    work: u64,
    /// Bytes of text (names, paths, strings) left to allocate: in a file
    /// whose names and strings each sit in its own bytes, never more than
    /// the file's length, however often they are pointed at.
    text: u64,
}

impl<'a> Reader<'a> {
    /// Checks the superblock; returns the reader and the root group's
    /// object header address.
    pub(super) fn open(bytes: &'a [u8]) -> Res<(Self, u64)> {
        let mut c = Cursor::new(bytes);
        if c.take(8).ok() != Some(&SIGNATURE[..]) {
            return Err("no HDF5 signature at offset 0: not an HDF5 file".into());
        }
        let root = Self::superblock(&mut c).map_err(|e| format!("superblock: {e}"))?;
        let work = BASE_WORK.saturating_add(bytes.len() as u64);
        let (seen, text) = (HashSet::new(), bytes.len() as u64);
        Ok((
            Reader {
                bytes,
                seen,
                work,
                text,
            },
            root,
        ))
    }

    /// The superblock after its signature: the root group's header address.
    fn superblock(c: &mut Cursor<'a>) -> Res<u64> {
        let version = c.u8()?;
        if version > 1 {
            return Err(format!("version {version} (libver='latest'): only 0 and 1"));
        }
        c.skip(4)?; // free space, root entry, reserved, shared header versions
        let (offsets, lengths) = (c.u8()?, c.u8()?);
        if (offsets, lengths) != (8, 8) {
            return Err(format!(
                "{offsets}-byte addresses, {lengths}-byte lengths: only 8"
            ));
        }
        // Reserved, the two B-tree K values, the flags; version 1 adds 4 bytes.
        c.skip(if version == 1 { 13 } else { 9 })?;
        let base = c.u64()?;
        if base != 0 {
            return Err(format!("a base address of {base}: only 0"));
        }
        c.skip(8)?; // free-space index
        let (eof, len) = (c.u64()?, c.bytes.len());
        if eof > len as u64 {
            return Err(format!(
                "truncated: it says {eof} bytes, the file has {len}"
            ));
        }
        c.skip(16)?; // driver information, root entry's name
        c.u64()
    }

    /// Counts one step against the work budget.
    fn tick(&mut self) -> Res<()> {
        self.work = self.work.checked_sub(1).ok_or_else(|| {
            format!("more than {BASE_WORK} steps plus one per byte: structures reused many times")
        })?;
        Ok(())
    }

    /// Counts `len` bytes of text against the text budget.
    pub(super) fn charge(&mut self, len: usize) -> Res<()> {
        let left = self.text.checked_sub(len as u64);
        self.text = left.ok_or("more names and strings than the file has bytes for")?;
        Ok(())
    }

    /// `len` bytes of the file at `addr`.
    fn slice(&self, addr: u64, len: u64) -> Res<&'a [u8]> {
        let mut c = Cursor::at(self.bytes, addr)?;
        let len = usize::try_from(len).map_err(|_| format!("a length of {len} bytes"))?;
        let size = self.bytes.len();
        c.take(len)
            .map_err(|_| format!("{len} bytes at {addr} run past the file's {size}"))
    }

    /// Marks a node as seen; an error if it was.
    fn visit(&mut self, addr: u64) -> Res<()> {
        self.tick()?;
        match self.seen.insert(addr) {
            true => Ok(()),
            false => Err(format!(
                "node {addr} reached twice: a cycle, or a group linked twice"
            )),
        }
    }

    /// The messages of the version 1 object header at `addr`, its
    /// continuation chunks followed.
    pub(super) fn object(&mut self, addr: u64) -> Res<Object<'a>> {
        self.object_messages(addr)
            .map_err(|e| format!("object header at {addr}: {e}"))
    }

    /// See [`Reader::object`].
    fn object_messages(&mut self, addr: u64) -> Res<Object<'a>> {
        let mut c = Cursor::at(self.bytes, addr)?;
        if c.rest().starts_with(b"OHDR") {
            return Err("a version 2 object header (libver='latest'): only version 1".into());
        }
        match c.u8()? {
            1 => c.skip(7)?, // reserved, message count (advisory), reference count
            v => return Err(format!("version {v}: only version 1")),
        }
        let size = c.u32()?;
        let first = addr.checked_add(16).ok_or("an address overflows")?;
        let mut chunks = vec![(first, u64::from(size))];
        let (mut object, mut messages, mut next) = (Object::default(), 0usize, 0);
        while let Some(&(start, len)) = chunks.get(next) {
            next += 1;
            let mut m = Cursor::new(self.slice(start, len)?);
            while m.rest().len() >= 8 {
                self.tick()?;
                messages += 1;
                if messages > MAX_MESSAGES {
                    return Err(format!("more than {MAX_MESSAGES} messages"));
                }
                let (kind, size, flags) = (m.u16()?, usize::from(m.u16()?), m.u8()?);
                m.skip(3)?;
                let data = m.take(size)?;
                let message = Message { flags, data };
                let mut d = Cursor::new(data);
                match kind {
                    0x0001 => object.dataspace = object.dataspace.or(Some(message)),
                    0x0003 => object.datatype = object.datatype.or(Some(message)),
                    0x0008 => object.layout = object.layout.or(Some(message)),
                    0x000C => object.attributes.push(message),
                    0x0002 | 0x0006 => object.new_style_group = true,
                    0x0010 => {
                        let chunk = (d.u64()?, d.u64()?);
                        if chunks.iter().any(|&(s, _)| s == chunk.0) {
                            return Err(format!("a continuation to {} again: a cycle", chunk.0));
                        }
                        if chunks.len() >= MAX_CHUNKS {
                            return Err(format!("more than {MAX_CHUNKS} chunks"));
                        }
                        chunks.push(chunk);
                    }
                    0x0011 if object.group.is_none() => {
                        object.group = Some(Group {
                            btree: d.u64()?,
                            heap: d.u64()?,
                        });
                    }
                    _ => {} // NIL, fill values, times, ...: nothing to read here
                }
            }
        }
        Ok(object)
    }

    /// The links of a group: (name, object header address) pairs.
    pub(super) fn children(&mut self, group: Group) -> Res<Vec<(String, u64)>> {
        let heap = self
            .local_heap(group.heap)
            .map_err(|e| format!("local heap at {}: {e}", group.heap))?;
        let mut links = Vec::new();
        // (node, the level its parent says it has): a stack, not recursion.
        let mut nodes = vec![(group.btree, None)];
        while let Some((addr, level)) = nodes.pop() {
            self.btree_node(addr, level, heap, &mut nodes, &mut links)
                .map_err(|e| format!("B-tree node at {addr}: {e}"))?;
        }
        Ok(links)
    }

    /// The data segment of the local heap at `addr`.
    fn local_heap(&self, addr: u64) -> Res<&'a [u8]> {
        let mut c = Cursor::at(self.bytes, addr)?;
        c.signature(b"HEAP", 0)?;
        c.skip(3)?;
        let size = c.u64()?;
        c.skip(8)?; // free list
        self.slice(c.u64()?, size)
    }

    /// One group B-tree node: its children go on `nodes` (inner nodes), or
    /// their symbol-table nodes' links into `links` (leaves).
    fn btree_node(
        &mut self,
        addr: u64,
        expected_level: Option<u8>,
        heap: &'a [u8],
        nodes: &mut Vec<(u64, Option<u8>)>,
        links: &mut Vec<(String, u64)>,
    ) -> Res<()> {
        self.visit(addr)?;
        let mut c = Cursor::at(self.bytes, addr)?;
        // The "version" of a B-tree node is its type: 0 for groups.
        c.signature(b"TREE", 0)
            .map_err(|e| format!("{e} (a group's B-tree)"))?;
        let level = c.u8()?;
        if level > MAX_BTREE_LEVEL || expected_level.is_some_and(|l| l != level) {
            return Err(format!(
                "level {level} (expected {expected_level:?}, at most {MAX_BTREE_LEVEL})"
            ));
        }
        let entries = c.u16()?;
        c.skip(16)?; // siblings
        for _ in 0..entries {
            self.tick()?;
            c.skip(8)?; // the key: a name's offset in the heap
            let child = c.u64()?;
            match level.checked_sub(1) {
                Some(below) => nodes.push((child, Some(below))),
                None => self
                    .symbol_node(child, heap, links)
                    .map_err(|e| format!("symbol-table node at {child}: {e}"))?,
            }
        }
        Ok(())
    }

    /// The links of the symbol-table node at `addr`, into `links`.
    fn symbol_node(&mut self, addr: u64, heap: &[u8], links: &mut Vec<(String, u64)>) -> Res<()> {
        self.visit(addr)?;
        let mut c = Cursor::at(self.bytes, addr)?;
        c.signature(b"SNOD", 1)?;
        c.skip(1)?;
        for _ in 0..c.u16()? {
            self.tick()?;
            let (name_at, header, cache) = (c.u64()?, c.u64()?, c.u32()?);
            c.skip(20)?; // reserved, scratch pad: the object header says it all
            let rest = usize::try_from(name_at).ok().and_then(|at| heap.get(at..));
            let rest = rest.unwrap_or(&[]);
            let name = rest
                .iter()
                .position(|&b| b == 0)
                .and_then(|end| rest.get(..end));
            self.charge(name.map_or(0, <[u8]>::len))?;
            let name = name.and_then(|n| String::from_utf8(n.to_vec()).ok());
            let name = name.ok_or_else(|| {
                format!("no UTF-8 name ending in NUL at {name_at} of the local heap")
            })?;
            if cache == 2 {
                return Err(format!("'{name}' is a soft link: not supported"));
            }
            links.push((name, header));
        }
        Ok(())
    }

    /// The value of the scalar string attribute `wanted` of `object`;
    /// `None` where there is none, or it is not a scalar string.
    pub(super) fn string_attribute(
        &mut self,
        object: &Object<'a>,
        wanted: &str,
    ) -> Res<Option<String>> {
        for message in &object.attributes {
            let Ok(data) = message.local("attribute") else {
                continue;
            };
            let [name, datatype, dataspace, value] = parse_attribute(data)?;
            if name != wanted.as_bytes() {
                continue;
            }
            let at = |e: String| format!("attribute '{wanted}': {e}");
            if element_count(&parse_dims(dataspace).map_err(at)?).map_err(at)? != 1 {
                return Ok(None);
            }
            let bytes = match parse_type(datatype).map_err(at)? {
                (Type::FixedString, size) => {
                    let raw = usize::try_from(size)
                        .ok()
                        .and_then(|size| value.get(..size));
                    let raw = raw.ok_or_else(|| at("its value is cut short".into()))?;
                    raw.split(|&b| b == 0).next().unwrap_or(&[])
                }
                (Type::VlenString, _) => {
                    // Its length, then the global heap object holding it.
                    let mut c = Cursor::new(value);
                    let id = (|| -> Res<_> { Ok((c.u32()?, c.u64()?, c.u32()?)) })();
                    let (len, heap, index) = id.map_err(at)?;
                    match len {
                        0 => &[],
                        _ => self
                            .global_heap_object(heap, index, len)
                            .map_err(|e| at(format!("global heap collection at {heap}: {e}")))?,
                    }
                }
                _ => return Ok(None),
            };
            self.charge(bytes.len())?;
            return Ok(String::from_utf8(bytes.to_vec()).ok());
        }
        Ok(None)
    }

    /// The first `len` bytes of object `index` of the global heap
    /// collection at `addr`.
    fn global_heap_object(&mut self, addr: u64, index: u32, len: u32) -> Res<&'a [u8]> {
        let mut c = Cursor::at(self.bytes, addr)?;
        c.signature(b"GCOL", 1)?;
        c.skip(3)?;
        let mut c = Cursor::new(self.slice(addr, c.u64()?)?);
        c.skip(16)?;
        while c.rest().len() >= 16 {
            self.tick()?;
            let id = c.u16()?;
            c.skip(6)?; // reference count, reserved
            let size = c.u64()?;
            if id == 0 {
                break; // free space: the last object
            }
            let data = usize::try_from(size).map_err(|_| format!("an object of {size} bytes"));
            let data = c.take(data?)?;
            // Objects are padded to a multiple of 8 bytes (the last may not be).
            c.skip((data.len().next_multiple_of(8) - data.len()).min(c.rest().len()))?;
            if u32::from(id) == index {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                return data
                    .get(..len)
                    .ok_or_else(|| format!("object {index} holds fewer than {len} bytes"));
            }
        }
        Err(format!("no object {index}"))
    }

    /// The shape, type and bytes of a dataset: its bytes are exactly its
    /// elements' and lie within the file.
    pub(super) fn dataset(&self, object: &Object<'a>) -> Res<Dataset<'a>> {
        let need = |m: Option<Message<'a>>, what| {
            m.ok_or_else(|| format!("no {what} message"))?.local(what)
        };
        let dims = parse_dims(need(object.dataspace, "dataspace")?)?;
        let (dtype, element) = parse_type(need(object.datatype, "datatype")?)?;
        let bytes = element_count(&dims)?.checked_mul(element);
        let bytes = bytes
            .ok_or_else(|| format!("a shape of {dims:?} of {element}-byte values overflows"))?;
        let mut c = Cursor::new(need(object.layout, "data layout")?);
        match c.u8()? {
            3 => {}
            v => return Err(format!("a data layout message of version {v}: only 3")),
        }
        let (data, size) = match c.u8()? {
            0 => {
                let size = c.u16()?;
                (c.take(usize::from(size))?, u64::from(size))
            }
            1 => match (c.u64()?, c.u64()?) {
                (UNDEFINED, _) if bytes != 0 => {
                    return Err(format!(
                        "the dataset was never written (no storage for its shape of {dims:?})"
                    ));
                }
                (UNDEFINED, _) => (&[][..], 0),
                (addr, size) if size == bytes => (self.slice(addr, size)?, size),
                (_, size) => (&[][..], size),
            },
            class => {
                let chunked = if class == 2 { " (chunked)" } else { "" };
                return Err(format!(
                    "a data layout of class {class}{chunked}: only contiguous or compact, as Keras writes"
                ));
            }
        };
        if size != bytes {
            return Err(format!(
                "{size} bytes of storage for a shape of {dims:?} of {element}-byte values"
            ));
        }
        let dtype = (dtype, element);
        Ok(Dataset { dims, dtype, data })
    }
}

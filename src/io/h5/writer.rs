// SPDX-License-Identifier: MIT OR Apache-2.0
//! Writes the HDF5 subset that `reader.rs` reads, laid out as h5py writes
//! it for Keras (`libver="earliest"`): superblock 0, version 1 object
//! headers, groups as symbol tables (a version 1 B-tree of symbol-table
//! nodes, link names in a local heap), contiguous datasets, and string
//! attributes as variable-length UTF-8 strings in a global heap. h5py
//! reads those as `str`; a fixed-length string reads as `bytes`, and
//! Keras's `attrs["dtype"] == "bfloat16"` would then be false. None of
//! these structures carries a checksum.
//!
//! Children are written before their parents, so every address is known
//! when it is written; only the superblock is filled in at the end. The
//! output depends on nothing but the input (no times, no free space left
//! by earlier writes).

use std::collections::{BTreeMap, BTreeSet};

use half::{bf16, f16};

use super::reader::Res;
use super::{Array, ArrayValues};

/// The first bytes of every HDF5 file.
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
/// HDF5's "undefined address": storage never allocated.
const UNDEFINED: u64 = u64::MAX;
/// Superblock 0 with 8-byte addresses and lengths, root entry included.
const SUPERBLOCK_SIZE: usize = 96;
/// Half the links of a symbol-table node (libhdf5's default "leaf K").
const LEAF_K: usize = 4;
/// Half the children of a group B-tree node (libhdf5's default "internal K").
const NODE_K: usize = 16;
/// A symbol-table node: libhdf5 reads all 2K entries' bytes, used or not.
const SNOD_SIZE: usize = 8 + 2 * LEAF_K * ENTRY_SIZE;
/// A B-tree node: header, 2K child addresses and 2K + 1 keys, read whole.
const TREE_SIZE: usize = 24 + 2 * NODE_K * 8 + (2 * NODE_K + 1) * 8;
/// A symbol-table entry: name offset, header, cache type, scratch pad.
const ENTRY_SIZE: usize = 40;
/// The end of a local heap's free list (libhdf5's `H5HL_FREE_NULL`): the
/// heaps written here have no free space.
const FREE_NULL: u64 = 1;
/// libhdf5 reads a global heap collection's first 4096 bytes before its
/// size, so none may be smaller.
const GCOL_MIN: usize = 4096;
/// HDF5's limit on a dataspace's rank.
const MAX_RANK: usize = 32;

/// A variable-length UTF-8 string: class 9 (version 1), a string of
/// UTF-8, NUL-terminated; its base type is an unsigned byte.
const VLEN_UTF8: [u8; 20] = [
    0x19, 0x01, 0x01, 0x00, 16, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0,
];
/// A scalar dataspace (version 1, rank 0).
const SCALAR: [u8; 8] = [1, 0, 0, 0, 0, 0, 0, 0];
/// Fill value message version 2, as libhdf5 writes it: late allocation,
/// fill if set, the default fill value.
const FILL: [u8; 8] = [2, 2, 2, 1, 0, 0, 0, 0];

/// IEEE little-endian floats: class 1 (version 1), implied leading 1, the
/// sign bit, 4-byte size, then bit offset and precision, exponent at and
/// bits, mantissa at and bits, exponent bias.
const F32: [u8; 20] = [
    0x11, 0x20, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0,
];
/// See [`F32`].
const F64: [u8; 20] = [
    0x11, 0x20, 63, 0, 8, 0, 0, 0, 0, 0, 64, 0, 52, 11, 0, 52, 0xff, 0x03, 0, 0,
];
/// See [`F32`].
const F16: [u8; 20] = [
    0x11, 0x20, 15, 0, 2, 0, 0, 0, 0, 0, 16, 0, 10, 5, 0, 10, 15, 0, 0, 0,
];
/// A signed little-endian byte: class 0, bit 3 signed, offset 0, 8 bits.
const I8: [u8; 12] = [0x10, 0x08, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0];
/// Two opaque bytes without a tag: h5py's bfloat16 (with `dtype="bfloat16"`).
const OPAQUE2: [u8; 8] = [0x15, 0, 0, 0, 2, 0, 0, 0];

/// A link of a group.
pub(super) enum Node<'a> {
    /// A subgroup.
    Group(Group<'a>),
    /// A dataset.
    Dataset(&'a Array),
}

/// A group to write: its links, by name, and its `name` attribute.
#[derive(Default)]
pub(super) struct Group<'a> {
    /// The links; a `BTreeMap` keeps them in byte order, as HDF5's
    /// symbol tables (compared by `strcmp`) must be.
    pub(super) links: BTreeMap<String, Node<'a>>,
    /// The string attribute `name`, if any.
    pub(super) name: Option<&'a str>,
}

impl<'a> Group<'a> {
    /// The subgroup `name`, created if absent; an error if it is a dataset.
    pub(super) fn group(&mut self, name: &str) -> Res<&mut Group<'a>> {
        let link = self.links.entry(name.to_owned());
        match link.or_insert_with(|| Node::Group(Group::default())) {
            Node::Group(group) => Ok(group),
            Node::Dataset(_) => Err(format!("'{name}' is a dataset, not a group")),
        }
    }

    /// Every string an attribute below this group holds, into `out`.
    fn strings(&self, out: &mut BTreeSet<&'a str>) {
        out.extend(self.name);
        for link in self.links.values() {
            match link {
                Node::Group(group) => group.strings(out),
                Node::Dataset(array) if matches!(array.values, ArrayValues::BF16(_)) => {
                    out.insert("bfloat16");
                }
                Node::Dataset(_) => {}
            }
        }
    }
}

/// The file of `root` (whose depth the caller bounds: this recurses).
pub(super) fn write(root: &Group) -> Res<Vec<u8>> {
    let mut file = File {
        bytes: vec![0; SUPERBLOCK_SIZE],
        strings: BTreeMap::new(),
    };
    let mut strings = BTreeSet::new();
    root.strings(&mut strings);
    file.global_heaps(strings)?;
    let (header, btree, heap) = file.group(root, "")?;
    let mut bytes = file.bytes;
    let eof = bytes.len() as u64;
    let mut sb = Vec::with_capacity(SUPERBLOCK_SIZE);
    sb.extend(SIGNATURE);
    // Versions (superblock, free space, root entry, reserved, shared
    // messages), 8-byte addresses and lengths, reserved.
    sb.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    sb.extend((LEAF_K as u16).to_le_bytes());
    sb.extend((NODE_K as u16).to_le_bytes());
    sb.extend(0u32.to_le_bytes()); // consistency flags
    for addr in [0, UNDEFINED, eof, UNDEFINED] {
        sb.extend(addr.to_le_bytes()); // base, free space, end of file, driver
    }
    sb.extend(entry(0, header, Some((btree, heap))));
    let head = bytes.get_mut(..SUPERBLOCK_SIZE);
    head.ok_or("no room for the superblock")?
        .copy_from_slice(&sb);
    Ok(bytes)
}

/// A symbol-table entry; a group's caches its B-tree and heap, as libhdf5's do.
fn entry(name_at: u64, header: u64, group: Option<(u64, u64)>) -> Vec<u8> {
    let (cache, (btree, heap)) = group.map_or((0u32, (0, 0)), |g| (1, g));
    let mut e = Vec::with_capacity(ENTRY_SIZE);
    e.extend(name_at.to_le_bytes());
    e.extend(header.to_le_bytes());
    e.extend(cache.to_le_bytes());
    e.extend([0; 4]); // reserved
    e.extend(btree.to_le_bytes()); // the scratch pad
    e.extend(heap.to_le_bytes());
    e
}

/// One object header message.
struct Message {
    /// Its type (`0x0001` dataspace, ...).
    kind: u16,
    /// Its flags (bit 0: constant).
    flags: u8,
    /// Its data, padded to 8 bytes when written.
    data: Vec<u8>,
}

/// A version 1 object header holding `messages`.
fn object_header(messages: &[Message]) -> Res<Vec<u8>> {
    let mut body = Vec::new();
    for m in messages {
        let size = m.data.len().next_multiple_of(8);
        let size16 = u16::try_from(size).map_err(|_| format!("a message of {size} bytes"))?;
        body.extend(m.kind.to_le_bytes());
        body.extend(size16.to_le_bytes());
        body.extend([m.flags, 0, 0, 0]);
        body.extend(&m.data);
        body.resize(body.len() + size - m.data.len(), 0);
    }
    let count = u16::try_from(messages.len()).map_err(|_| "too many messages")?;
    let size = u32::try_from(body.len()).map_err(|_| "an object header over 4 GiB")?;
    let mut out = vec![1, 0];
    out.extend(count.to_le_bytes());
    out.extend(1u32.to_le_bytes()); // reference count
    out.extend(size.to_le_bytes());
    out.extend([0; 4]); // pads the prefix to 16 bytes
    out.extend(body);
    Ok(out)
}

/// An attribute message (version 1: each part padded to 8 bytes) holding
/// a scalar variable-length string, whose heap ID is `value`.
fn string_attribute(name: &str, value: &[u8]) -> Message {
    let mut data = vec![1, 0];
    data.extend((name.len() as u16 + 1).to_le_bytes());
    data.extend((VLEN_UTF8.len() as u16).to_le_bytes());
    data.extend((SCALAR.len() as u16).to_le_bytes());
    for part in [&[name.as_bytes(), &[0]].concat()[..], &VLEN_UTF8, &SCALAR] {
        data.extend(part);
        data.resize(data.len().next_multiple_of(8), 0);
    }
    data.extend(value);
    Message {
        kind: 0x000C,
        flags: 0,
        data,
    }
}

/// A child of a B-tree node: its address and the heap offsets of the
/// names bounding it (the last name before it, its own last name).
#[derive(Clone, Copy)]
struct Child {
    /// Its address.
    addr: u64,
    /// Its left key.
    left: u64,
    /// Its right key.
    right: u64,
}

/// The file as it is written.
struct File<'a> {
    /// Its bytes so far.
    bytes: Vec<u8>,
    /// Each attribute string's heap ID (length, collection, index).
    strings: BTreeMap<&'a str, Vec<u8>>,
}

impl<'a> File<'a> {
    /// Where [`File::put`] will put the next bytes.
    fn next(&self) -> u64 {
        self.bytes.len().next_multiple_of(8) as u64
    }

    /// Appends `data` at the next multiple of 8; returns its address.
    fn put(&mut self, data: &[u8]) -> u64 {
        let at = self.next();
        self.bytes.resize(self.bytes.len().next_multiple_of(8), 0);
        self.bytes.extend_from_slice(data);
        at
    }

    /// Global heap collections holding `strings`, once each; their IDs go
    /// into `self.strings`.
    fn global_heaps(&mut self, strings: BTreeSet<&'a str>) -> Res<()> {
        let strings: Vec<_> = strings.into_iter().collect();
        // Objects are numbered by a u16 from 1.
        for chunk in strings.chunks(usize::from(u16::MAX)) {
            let addr = self.next();
            let mut objects = Vec::new();
            for (index, &s) in (1u16..).zip(chunk) {
                if s.contains('\0') {
                    return Err(format!("the string {s:?} holds a NUL"));
                }
                let len = u32::try_from(s.len()).map_err(|_| "a string over 4 GiB")?;
                objects.extend(index.to_le_bytes());
                objects.extend([0; 6]); // reference count, reserved
                objects.extend((s.len() as u64).to_le_bytes());
                objects.extend(s.as_bytes());
                objects.resize(objects.len().next_multiple_of(8), 0);
                let mut id = len.to_le_bytes().to_vec();
                id.extend(addr.to_le_bytes());
                id.extend(u32::from(index).to_le_bytes());
                self.strings.insert(s, id);
            }
            // The rest is free space: object 0, whose size counts its header.
            let used = 16 + objects.len();
            let size = GCOL_MIN.max(used + 16);
            objects.extend([0; 8]);
            objects.extend(((size - used) as u64).to_le_bytes());
            objects.resize(size - 16, 0);
            let mut gcol = b"GCOL\x01\0\0\0".to_vec();
            gcol.extend((size as u64).to_le_bytes());
            gcol.extend(objects);
            self.put(&gcol);
        }
        Ok(())
    }

    /// The ID of a string [`File::global_heaps`] stored.
    fn string(&self, s: &str) -> Res<&[u8]> {
        let id = self.strings.get(s).map(Vec::as_slice);
        id.ok_or_else(|| format!("the string {s:?} is not in the global heap"))
    }

    /// Writes `group`, at `path` (for messages), and everything below it;
    /// returns the addresses of its object header, B-tree and local heap.
    fn group(&mut self, group: &Group, path: &str) -> Res<(u64, u64, u64)> {
        // The local heap's names, from offset 8: offset 0 is the empty
        // name, the B-tree's leftmost key.
        let mut names = vec![0u8; 8];
        let mut entries = Vec::with_capacity(group.links.len());
        for (name, link) in &group.links {
            let path = format!("{path}/{name}");
            if name.is_empty() || name == "." || name.contains(['/', '\0']) {
                return Err(format!("{name:?} cannot name an HDF5 link ('{path}')"));
            }
            let name_at = names.len() as u64;
            names.extend(name.as_bytes());
            names.push(0);
            names.resize(names.len().next_multiple_of(8), 0);
            let entry = match link {
                Node::Group(sub) => {
                    let (header, btree, heap) = self.group(sub, &path)?;
                    entry(name_at, header, Some((btree, heap)))
                }
                Node::Dataset(array) => {
                    let header = self.dataset(array).map_err(|e| format!("'{path}': {e}"))?;
                    entry(name_at, header, None)
                }
            };
            entries.push((name_at, entry));
        }
        let heap = self.next();
        let mut local = b"HEAP\0\0\0\0".to_vec();
        for field in [names.len() as u64, FREE_NULL, heap + 32] {
            local.extend(field.to_le_bytes()); // data size, free list, data address
        }
        local.extend(names);
        self.put(&local);

        let mut leaves = Vec::new();
        let mut left = 0;
        for chunk in entries.chunks(2 * LEAF_K) {
            let mut node = b"SNOD\x01\0".to_vec();
            node.extend((chunk.len() as u16).to_le_bytes());
            chunk.iter().for_each(|(_, e)| node.extend(e));
            node.resize(SNOD_SIZE, 0);
            let last = chunk.last().map_or(0, |&(name_at, _)| name_at);
            leaves.push(Child {
                addr: self.put(&node),
                left,
                right: last,
            });
            left = last;
        }
        let btree = self.btree(leaves)?;

        let mut table = btree.to_le_bytes().to_vec();
        table.extend(heap.to_le_bytes());
        let mut messages = vec![Message {
            kind: 0x0011,
            flags: 0,
            data: table,
        }];
        if let Some(name) = group.name {
            messages.push(string_attribute("name", self.string(name)?));
        }
        let header = self.put(&object_header(&messages)?);
        Ok((header, btree, heap))
    }

    /// The B-tree over symbol-table nodes `children` (in name order), built
    /// level by level; returns its root's address.
    fn btree(&mut self, mut children: Vec<Child>) -> Res<u64> {
        let mut level = 0u8;
        loop {
            // An empty group is one node without children.
            let nodes: Vec<&[Child]> = match children.is_empty() {
                true => vec![&[]],
                false => children.chunks(2 * NODE_K).collect(),
            };
            // The nodes of a level lie side by side: siblings are known ahead.
            let first = self.next();
            let at = |i: usize| first + (i * TREE_SIZE) as u64;
            let mut parents = Vec::with_capacity(nodes.len());
            for (i, kids) in nodes.iter().enumerate() {
                let left = kids.first().map_or(0, |k| k.left);
                let right = kids.last().map_or(0, |k| k.right);
                let mut node = b"TREE\0".to_vec(); // type 0: a group's
                node.push(level);
                node.extend((kids.len() as u16).to_le_bytes());
                let before = i.checked_sub(1).map_or(UNDEFINED, at);
                let after = if i + 1 < nodes.len() {
                    at(i + 1)
                } else {
                    UNDEFINED
                };
                node.extend(before.to_le_bytes());
                node.extend(after.to_le_bytes());
                node.extend(left.to_le_bytes());
                for kid in *kids {
                    node.extend(kid.addr.to_le_bytes());
                    node.extend(kid.right.to_le_bytes());
                }
                node.resize(TREE_SIZE, 0);
                let addr = self.put(&node);
                parents.push(Child { addr, left, right });
            }
            if let [root] = parents[..] {
                return Ok(root.addr);
            }
            children = parents;
            level = level.checked_add(1).ok_or("a B-tree over 255 levels")?;
        }
    }

    /// Writes a dataset's elements and header; returns the header's address.
    fn dataset(&mut self, array: &Array) -> Res<u64> {
        let (datatype, data, count): (&[u8], _, _) = match &array.values {
            ArrayValues::F32(v) => (&F32, le(v, f32::to_le_bytes), v.len()),
            ArrayValues::F64(v) => (&F64, le(v, f64::to_le_bytes), v.len()),
            ArrayValues::F16(v) => (&F16, le(v, f16::to_le_bytes), v.len()),
            ArrayValues::BF16(v) => (&OPAQUE2, le(v, bf16::to_le_bytes), v.len()),
            ArrayValues::I8(v) => (&I8, le(v, i8::to_le_bytes), v.len()),
            ArrayValues::Other(what) => {
                return Err(format!("values of type {what} cannot be written"));
            }
        };
        let shape = &array.shape;
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements != Some(count) {
            return Err(format!("{count} values for a shape of {shape:?}"));
        }
        let rank = u8::try_from(shape.len())
            .ok()
            .filter(|&r| usize::from(r) <= MAX_RANK);
        let rank = rank.ok_or_else(|| format!("a rank of {}: at most {MAX_RANK}", shape.len()))?;
        // No storage at all for no elements, as libhdf5 leaves it.
        let addr = match data.is_empty() {
            true => UNDEFINED,
            false => self.put(&data),
        };

        // Dataspace version 1 (rank 0: a scalar), without maximum dimensions.
        let mut space = vec![1, rank, 0, 0, 0, 0, 0, 0];
        shape
            .iter()
            .for_each(|&d| space.extend((d as u64).to_le_bytes()));
        // Data layout version 3, contiguous.
        let mut layout = vec![3, 1];
        layout.extend(addr.to_le_bytes());
        layout.extend((data.len() as u64).to_le_bytes());
        let message = |kind, flags, data: &[u8]| Message {
            kind,
            flags,
            data: data.to_vec(),
        };
        let mut messages = vec![
            message(0x0001, 0, &space),
            message(0x0003, 1, datatype),
            message(0x0005, 1, &FILL),
            message(0x0008, 0, &layout),
        ];
        if let ArrayValues::BF16(_) = array.values {
            messages.push(string_attribute("dtype", self.string("bfloat16")?));
        }
        Ok(self.put(&object_header(&messages)?))
    }
}

/// Values as their little-endian bytes, one after another.
fn le<T: Copy, const N: usize>(values: &[T], to_le: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&x| to_le(x)).collect()
}

//! Interning: dimension strings and non-UUID request ids become small integer ids, so
//! a pending entry holds 4 bytes instead of several strings.
//!
//! Dimension tuples are also interned once per process as `&'static` values, which
//! outputs carry: copying a reference costs nothing, where an `Arc` clone per fact cost
//! about a third of the join's throughput (its atomic waits for outstanding cache
//! misses). They are never freed: memory grows with the number of distinct
//! (country, device, canvas, region) tuples the process has seen, a small set in practice.

use std::hash::{BuildHasher, Hash};
use std::mem::size_of;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::output::{CellDims, PlayDims};

/// A tuple of dimension strings that can be looked up by borrowed parts.
pub(crate) trait Dims {
    /// The borrowed form, hashed and compared without allocating.
    type Ref<'a>: Hash + PartialEq + Copy
    where
        Self: 'a;
    /// Borrows the parts.
    fn parts(&self) -> Self::Ref<'_>;
    /// Builds an owned value from borrowed parts.
    fn from_parts(parts: Self::Ref<'_>) -> Self;
    /// Whether `self` has these parts.
    fn eq_parts(&self, parts: Self::Ref<'_>) -> bool;
    /// The process-wide registry of this type.
    fn registry() -> &'static Registry<Self>
    where
        Self: Sized;
}

static CELL_DIMS: LazyLock<Registry<CellDims>> = LazyLock::new(Registry::new);
static PLAY_DIMS: LazyLock<Registry<PlayDims>> = LazyLock::new(Registry::new);

/// Process-wide interning of dimension tuples to leaked, never-freed `&'static` values.
#[derive(Debug)]
pub(crate) struct Registry<T: 'static> {
    table: Mutex<HashTable<&'static T>>,
    hasher: DefaultHashBuilder,
}

impl<T: Dims + 'static> Registry<T> {
    fn new() -> Self {
        Self { table: Mutex::new(HashTable::new()), hasher: DefaultHashBuilder::default() }
    }

    /// The one `&'static` value with these parts.
    fn intern(&self, parts: T::Ref<'_>) -> &'static T {
        let hash = self.hasher.hash_one(parts);
        // The table is consistent after any panic (insert_unique only fails by aborting).
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&value) = table.find(hash, |value| value.eq_parts(parts)) {
            return value;
        }
        let value: &'static T = Box::leak(Box::new(T::from_parts(parts)));
        table.insert_unique(hash, value, |value| self.hasher.hash_one(value.parts()));
        value
    }
}

impl Dims for CellDims {
    type Ref<'a> = (&'a str, &'a str, &'a str, &'a str);
    fn parts(&self) -> Self::Ref<'_> {
        (&self.country, &self.device, &self.canvas, &self.region)
    }
    fn eq_parts(&self, (country, device, canvas, region): Self::Ref<'_>) -> bool {
        *self.country == *country
            && *self.device == *device
            && *self.canvas == *canvas
            && *self.region == *region
    }
    fn registry() -> &'static Registry<Self> {
        &CELL_DIMS
    }
    fn from_parts((country, device, canvas, region): Self::Ref<'_>) -> Self {
        CellDims {
            country: country.into(),
            device: device.into(),
            canvas: canvas.into(),
            region: region.into(),
        }
    }
}

impl Dims for PlayDims {
    type Ref<'a> = (&'a str, &'a str, &'a str);
    fn parts(&self) -> Self::Ref<'_> {
        (&self.country, &self.device, &self.region)
    }
    fn eq_parts(&self, (country, device, region): Self::Ref<'_>) -> bool {
        *self.country == *country && *self.device == *device && *self.region == *region
    }
    fn registry() -> &'static Registry<Self> {
        &PLAY_DIMS
    }
    fn from_parts((country, device, region): Self::Ref<'_>) -> Self {
        PlayDims { country: country.into(), device: device.into(), region: region.into() }
    }
}

/// Interns dimension tuples to dense `u32` ids for one state, each standing for the
/// process-wide value; only a tuple new to this state takes the registry's lock.
#[derive(Debug)]
pub(crate) struct Interner<T: 'static> {
    values: Vec<&'static T>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<T: Dims> Interner<T> {
    pub(crate) fn new() -> Self {
        Self { values: Vec::new(), table: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }

    /// The id of `parts`, adding it if new.
    pub(crate) fn intern(&mut self, parts: T::Ref<'_>) -> u32 {
        let hash = self.hasher.hash_one(parts);
        let values = &self.values;
        if let Some(&id) = self.table.find(hash, |&id| values[id as usize].eq_parts(parts)) {
            return id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct dimension tuples");
        self.values.push(T::registry().intern(parts));
        let (values, hasher) = (&self.values, &self.hasher);
        self.table.insert_unique(hash, id, |&id| hasher.hash_one(values[id as usize].parts()));
        id
    }

    /// The value of an id this interner returned.
    pub(crate) fn get(&self, id: u32) -> &'static T {
        self.values[id as usize]
    }

    /// Bytes of this state's cache (the process-wide values are not counted).
    pub(crate) fn approx_bytes(&self) -> usize {
        self.values.capacity() * size_of::<&'static T>() + self.table.allocation_size()
    }
}

#[derive(Debug)]
struct TextSlot {
    text: Option<Arc<str>>,
    refs: u32,
}

/// Reference-counted interning of request ids that are not canonical UUIDs.
///
/// Exact (the table compares full strings), so a collision cannot merge two requests.
#[derive(Debug)]
pub(crate) struct TextArena {
    slots: Vec<TextSlot>,
    free: Vec<u32>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    text_bytes: usize,
}

impl TextArena {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            text_bytes: 0,
        }
    }

    fn text_of(slots: &[TextSlot], id: u32) -> &str {
        slots[id as usize].text.as_deref().unwrap_or_default()
    }

    /// The id of `text`, adding it with no references if new; pair with
    /// [`Self::acquire`] or [`Self::release_if_unused`].
    pub(crate) fn intern(&mut self, text: &str) -> u32 {
        let hash = self.hasher.hash_one(text);
        let slots = &self.slots;
        if let Some(&id) = self.table.find(hash, |&id| Self::text_of(slots, id) == text) {
            return id;
        }
        let slot = TextSlot { text: Some(Arc::from(text)), refs: 0 };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 live request ids")
            }
        };
        self.text_bytes += text.len();
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table.insert_unique(hash, id, |&id| hasher.hash_one(Self::text_of(slots, id)));
        id
    }

    /// The text of a live id.
    pub(crate) fn get(&self, id: u32) -> &Arc<str> {
        self.slots[id as usize].text.as_ref().expect("text id is live while a record refers to it")
    }

    /// Adds a reference (one per record holding the id).
    pub(crate) fn acquire(&mut self, id: u32) {
        self.slots[id as usize].refs += 1;
    }

    /// Drops a reference, freeing the text when none remain.
    pub(crate) fn release(&mut self, id: u32) {
        let slot = &mut self.slots[id as usize];
        slot.refs -= 1;
        if slot.refs == 0 {
            self.remove(id);
        }
    }

    /// Frees an interned id that no record took.
    pub(crate) fn release_if_unused(&mut self, id: u32) {
        if self.slots[id as usize].refs == 0 {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u32) {
        let text = self.slots[id as usize].text.take().unwrap_or_default();
        let hash = self.hasher.hash_one(&*text);
        if let Ok(entry) = self.table.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        self.text_bytes -= text.len();
        self.free.push(id);
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<TextSlot>()
            + self.free.capacity() * size_of::<u32>()
            + self.table.allocation_size()
            + self.text_bytes
            + (self.slots.len() - self.free.len()) * 16
    }
}

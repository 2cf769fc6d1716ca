//! [`Shared`]: state that several tasks hold together — an address space (`CLONE_VM`), a
//! descriptor table (`CLONE_FILES`), cwd and umask (`CLONE_FS`), signal handlers
//! (`CLONE_SIGHAND`), a thread group (`CLONE_THREAD`).
//!
//! The Sentry runs one task's event at a time, so a `RefCell` is the lock: a borrow lasts one
//! statement or one helper, and two borrows of the same object at once are a Sentry bug that
//! stops it (a panic), never a silent alias. When the Sentry runs tasks in parallel this
//! becomes a mutex behind the same two methods.

use alloc::rc::Rc;
use core::cell::{Cell, Ref, RefCell, RefMut};

pub struct Shared<T>(Rc<Inner<T>>);

struct Inner<T> {
    value: RefCell<T>,
    /// Bumped by every [`Shared::lock`]: a reader that saw generation `g` knows nothing
    /// changed while it still reads `g` (the scheduler's fast path, without a borrow).
    generation: Cell<u64>,
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Self {
        Shared(Rc::new(Inner {
            value: RefCell::new(value),
            generation: Cell::new(0),
        }))
    }

    /// The object, to change.
    #[inline]
    pub fn lock(&self) -> RefMut<'_, T> {
        self.0
            .generation
            .set(self.0.generation.get().wrapping_add(1));
        self.0.value.borrow_mut()
    }

    /// The object, to change in a way no reader of [`Shared::generation`] needs to see: the
    /// platform running the app in its address space (every syscall's round trip), where a
    /// bump would only cost the hot path.
    #[inline]
    pub fn lock_unobserved(&self) -> RefMut<'_, T> {
        self.0.value.borrow_mut()
    }

    /// The object, to read (several readers at once are fine).
    #[inline]
    pub fn get(&self) -> Ref<'_, T> {
        self.0.value.borrow()
    }

    /// How many times the object has been locked to change it (see [`Inner::generation`]).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.0.generation.get()
    }

    /// Another holder of the same object (the clone flag that shares it).
    pub fn share(&self) -> Self {
        Shared(self.0.clone())
    }

    /// Whether `self` and `other` are the same object.
    pub fn same(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// A number that names the object while it lives (futex keys of a private address space).
    pub fn id(&self) -> usize {
        Rc::as_ptr(&self.0) as *const u8 as usize
    }

    /// Whether this is the last holder.
    pub fn sole(&self) -> bool {
        Rc::strong_count(&self.0) == 1
    }
}

impl<T: Clone> Shared<T> {
    /// A private copy (the clone flag that would share it was not given).
    pub fn copy(&self) -> Self {
        Shared::new(self.get().clone())
    }
}

//! Program images kept between `execve`s of the same file, as a page cache would: the frames
//! the loader filled (text, data) stay referenced here, and the next exec of that file maps them
//! instead of reading and copying the file again — a shell running `busybox` applets execs the
//! same 2 MB image over and over. Writable image pages are shared copy-on-write (the cache's
//! reference keeps every frame shared), so no process ever changes a cached frame: a write, a
//! patched syscall site or a relocation gets a private copy.
//!
//! A file is known by its host identity and change stamps (device, inode, size, mtime, ctime).
//! With `--rw` nothing is cached: the sandbox itself may rewrite a program in place faster than
//! the host's timestamps move.

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::abi::HostStat;
use crate::memfile::{MemoryFile, PAGE_SIZE};
use crate::mm::{Mm, PageList, VmaList};
use crate::platform::AddressSpace;

/// Which host file, as of which change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl ImageKey {
    pub fn of(st: &HostStat) -> ImageKey {
        ImageKey {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
        }
    }
}

/// Where the loader put things, beyond the pages: what the initial stack and registers need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageLayout {
    pub entry: u64,
    pub phdr: u64,
    pub phnum: u64,
    /// End of the image: where the heap starts.
    pub brk: u64,
    /// Where the ELF interpreter was loaded (`AT_BASE`; 0 for a static program).
    pub base: u64,
    /// Where the program starts: its entry, or its interpreter's.
    pub start: u64,
}

/// One loaded program: its VMAs and the frames of the pages the loader filled. The cache holds
/// one reference to each frame, dropped with the entry.
pub struct CachedImage {
    mem: Rc<MemoryFile>,
    key: ImageKey,
    pub vmas: VmaList,
    pub pages: PageList,
    pub layout: ImageLayout,
}

impl Drop for CachedImage {
    fn drop(&mut self) {
        for &(_, frame) in &self.pages {
            self.mem.free_page(frame);
        }
    }
}

/// How `execve` gets its new image: bytes read from the file (`key` says which host file, when
/// it may be cached; `interp` is the ELF interpreter's image for a dynamically linked
/// program), or a cached image.
pub enum ExecSource {
    Bytes {
        image: Vec<u8>,
        interp: Option<Vec<u8>>,
        key: Option<ImageKey>,
    },
    Cached(Rc<CachedImage>),
}

/// Most images kept.
const MAX_IMAGES: usize = 8;

/// Most frames kept, all images together: an eighth of sandbox memory.
fn budget(mem: &MemoryFile) -> u64 {
    mem.size() / PAGE_SIZE / 8
}

pub struct ImageCache {
    enabled: bool,
    /// (last use, image), most recent last.
    entries: Vec<(u64, Rc<CachedImage>)>,
    tick: u64,
}

impl ImageCache {
    pub fn new(enabled: bool) -> ImageCache {
        ImageCache {
            enabled,
            entries: Vec::new(),
            tick: 0,
        }
    }

    /// The cached image of `key`, if any.
    pub fn get(&mut self, key: &ImageKey) -> Option<Rc<CachedImage>> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.iter_mut().find(|(_, i)| i.key == *key)?;
        e.0 = tick;
        Some(e.1.clone())
    }

    /// Whether images of this sandbox may be cached at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Keeps `image` (whose frames already carry the cache's reference, and which fits the
    /// budget), evicting the least recently used images beyond the limits.
    fn insert(&mut self, image: CachedImage) {
        let budget = budget(&image.mem);
        self.entries.retain(|(_, i)| i.key != image.key);
        self.tick += 1;
        self.entries.push((self.tick, Rc::new(image)));
        self.entries.sort_by_key(|(t, _)| *t);
        let total = |e: &Vec<(u64, Rc<CachedImage>)>| -> u64 {
            e.iter().map(|(_, i)| i.pages.len() as u64).sum()
        };
        while self.entries.len() > MAX_IMAGES || total(&self.entries) > budget {
            self.entries.remove(0);
        }
    }

    /// Keeps the image just loaded into `mm` from the file `key` names: the cache takes a
    /// reference to each of its frames, and `mm` shows its writable pages copy-on-write.
    pub fn keep<S: AddressSpace>(
        &mut self,
        mem: &Rc<MemoryFile>,
        key: ImageKey,
        mm: &mut Mm<S>,
        layout: ImageLayout,
    ) {
        if !self.enabled {
            return;
        }
        let (vmas, pages) = mm.image_pages();
        if pages.len() as u64 > budget(mem) {
            return;
        }
        let image = Self::capture(mem, key, vmas, pages, layout);
        if mm.now_shared(&image.pages).is_ok() {
            self.insert(image);
        }
    }

    /// Builds a cache entry from a freshly loaded address space's image pages (taking a
    /// reference to each frame).
    fn capture(
        mem: &Rc<MemoryFile>,
        key: ImageKey,
        vmas: VmaList,
        pages: PageList,
        layout: ImageLayout,
    ) -> CachedImage {
        for &(_, frame) in &pages {
            mem.share_page(frame);
        }
        CachedImage {
            mem: mem.clone(),
            key,
            vmas,
            pages,
            layout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::mm::VmaKind;
    use crate::platform::Access;
    use std::vec;

    struct Space;
    impl AddressSpace for Space {
        fn map_file(&mut self, _: u64, _: u64, _: u64, _: Access) -> Result<(), Errno> {
            Ok(())
        }
        fn unmap(&mut self, _: u64, _: u64) {}
    }

    fn key(ino: u64) -> ImageKey {
        ImageKey {
            dev: 1,
            ino,
            size: 3 * 4096,
            mtime_ns: 5,
            ctime_ns: 6,
        }
    }

    /// A process with a two-page text (RX) and a one-page data (RW) image, loaded with `fill`.
    fn load(mem: &Rc<MemoryFile>, fill: u8) -> Mm<Space> {
        let mut m = Mm::new(Space, mem.clone());
        m.add_vma(0x40_0000, 0x40_2000, Access::RX, VmaKind::Image)
            .unwrap();
        m.add_vma(0x40_2000, 0x40_3000, Access::RW, VmaKind::Image)
            .unwrap();
        m.load(0x40_0000, &[fill; 3 * 4096]).unwrap();
        m
    }

    fn byte(m: &mut Mm<Space>, at: u64) -> u8 {
        let mut b = [0u8];
        m.copy_in(at, &mut b).unwrap();
        b[0]
    }

    #[test]
    fn cached_images_are_shared_and_never_written() {
        let mut backing = vec![0u8; 256 * 4096];
        // SAFETY: the Vec outlives every Mm and the cache (dropped first, below).
        let mem = Rc::new(unsafe {
            MemoryFile::new(backing.as_mut_ptr() as u64, backing.len() as u64, 0)
        });
        let mut cache = ImageCache::new(true);
        let mut first = load(&mem, 0xaa);
        cache.keep(&mem, key(1), &mut first, ImageLayout::default());
        assert_eq!(mem.pages_in_use(), 3, "the cache copies nothing");
        // The first process writes its data page: a private copy, the cached frame untouched.
        first.copy_out(0x40_2000, &[0x55]).unwrap();
        assert_eq!(mem.pages_in_use(), 4);
        let image = cache.get(&key(1)).expect("cached");
        assert!(cache.get(&key(2)).is_none());
        let mut second = Mm::new(Space, mem.clone());
        second.adopt_image(&image.vmas, &image.pages).unwrap();
        assert_eq!(byte(&mut second, 0x40_2000), 0xaa);
        assert_eq!(byte(&mut second, 0x40_1fff), 0xaa);
        assert_eq!(mem.pages_in_use(), 4, "the second image shares every frame");
        second.copy_out(0x40_2000, &[0x66]).unwrap();
        let mut third = Mm::new(Space, mem.clone());
        third.adopt_image(&image.vmas, &image.pages).unwrap();
        assert_eq!(byte(&mut third, 0x40_2000), 0xaa);
        for mut m in [first, second, third] {
            m.release();
        }
        drop(image);
        assert_eq!(mem.pages_in_use(), 3, "only the cache's frames are left");
        // Newer images push the oldest out; their frames go with them.
        for ino in 2..=(MAX_IMAGES as u64 + 1) {
            let mut m = load(&mem, ino as u8);
            cache.keep(&mem, key(ino), &mut m, ImageLayout::default());
            m.release();
        }
        assert!(cache.get(&key(1)).is_none(), "evicted");
        assert_eq!(mem.pages_in_use(), 3 * MAX_IMAGES as u64);
        drop(cache);
        assert_eq!(mem.pages_in_use(), 0);
    }
}

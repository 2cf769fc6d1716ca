//! `execve`: the other threads end, the caller takes the process's id, the image is replaced
//! (gVisor's `task_exec.go`).

use super::*;

/// `execve` by thread `tid`: the other threads end, the caller takes the leader's tid, then
/// the program is replaced (or the exec fails and the caller goes on alone... as Linux's
/// point of no return comes before the other threads go, an exec that fails keeps them).
pub(super) fn exec_request<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    table: &mut Table<P>,
    tid: u32,
    e: Exec,
) {
    let t = table.tasks.get_mut(&tid).expect("exec'ing task");
    let pid = t.pid;
    let r = exec(platform, k, t, e);
    if let Err(err) = r {
        t.regs.rax = crate::errno::to_rax(Err(err));
        return;
    }
    // The new image runs alone in the process, under the process's id.
    for other in threads_of(table, pid) {
        if other == tid {
            continue;
        }
        let mut o = table.tasks.remove(&other).expect("thread exists");
        k.futex.cancel(other);
        o.tg.lock().threads -= 1;
        release_vfork_parent(table, &mut o);
        release_task(k, o);
    }
    let mut t = table.tasks.remove(&tid).expect("exec'ing task");
    t.tid = pid;
    t.exit = None;
    t.tg.lock().leader_exit = None;
    release_vfork_parent(table, &mut t);
    table.tasks.insert(pid, t);
}

pub(super) fn exec<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    t: &mut Task<P>,
    e: Exec,
) -> Result<(), Errno> {
    let ctx = platform.new_context()?;
    let space = platform.new_address_space()?;
    let mut mm = Mm::new(space, k.mem.clone());
    let mut random = [0u8; 16];
    k.random_bytes(&mut random);
    use crate::image_cache::ExecSource;
    let ids = crate::kernel::SANDBOX_IDS;
    let loaded = match &e.image {
        ExecSource::Bytes { image, interp, .. } => loader::load(
            &mut mm,
            image,
            interp.as_deref(),
            &e.execfn,
            &e.argv,
            &e.envp,
            random,
            ids,
        ),
        ExecSource::Cached(image) => {
            loader::load_cached(&mut mm, image, &e.execfn, &e.argv, &e.envp, random, ids)
        }
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(err) => {
            mm.release();
            return Err(err);
        }
    };
    // (Only static programs are kept: a dynamic one's image includes its interpreter's.)
    if let ExecSource::Bytes {
        key: Some(key),
        interp: None,
        ..
    } = e.image
    {
        let mem = k.mem.clone();
        k.images.keep(&mem, key, &mut mm, loaded.layout);
    }
    // The point of no return: the old image goes (with its last holder: a vfork parent or
    // other threads may still hold it).
    let old = core::mem::replace(&mut t.mm, Shared::new(mm));
    if old.sole() {
        old.lock().release();
    }
    drop(old);
    // A new context: the old one's FPU state belongs to the old image.
    t.ctx = ctx;
    t.regs = loaded.regs;
    t.comm = crate::kernel::comm_for(&e.exe_path);
    {
        let mut g = t.tg.lock();
        g.cmdline = crate::kernel::cmdline_of(&e.argv);
        g.exe_path = e.exe_path;
        g.timers.clear();
    }
    // Descriptors and handlers another process shared become this one's own; close-on-exec
    // descriptors close; caught signals go back to their default action.
    if !t.files.sole() {
        t.files = t.files.copy();
    }
    let cloexec = core::mem::take(&mut t.files.lock().cloexec);
    for fd in cloexec {
        let of = t
            .files
            .lock()
            .fds
            .get_mut(fd as usize)
            .and_then(|f| f.take());
        if let Some(of) = of {
            crate::file::release(k.host, of);
        }
    }
    for key in e.cloexec_locks {
        k.locks.release_file(key, t.pid);
    }
    if !t.sighand.sole() {
        t.sighand = t.sighand.copy();
    }
    for a in t.sighand.lock().iter_mut() {
        if a.handler != signal::SIG_IGN {
            *a = signal::SigAction::default();
        }
    }
    t.signals.altstack = (0, 0, false);
    t.clear_child_tid = 0;
    t.robust_list = (0, 0);
    Ok(())
}

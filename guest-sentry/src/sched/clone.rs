//! `clone`: a new thread or process made from its parent, each part shared or copied by its
//! clone flag (Linux's `copy_process`; gVisor's `task_clone.go`).

use super::*;

/// The parent process of a task `tid` creates with `flags`: itself, or with `CLONE_PARENT` or
/// `CLONE_THREAD` its own parent.
pub(super) fn parent_of_new<P: Platform>(table: &Table<P>, tid: u32, flags: u64) -> u32 {
    let t = &table.tasks[&tid];
    if flags & (CLONE_PARENT | CLONE_THREAD) != 0 {
        t.tg.get().ppid
    } else {
        t.pid
    }
}

/// A new task made from `parent` by `clone`: each part shared or copied by its flag.
pub(super) fn clone<P: Platform>(
    platform: &mut P,
    k: &mut Kernel,
    parent: &mut Task<P>,
    tid: u32,
    ppid: u32,
    args: CloneArgs,
) -> Result<Task<P>, Errno> {
    let f = args.flags;
    let mm = if f & CLONE_VM != 0 {
        parent.mm.share()
    } else {
        let space = platform.new_address_space()?;
        Shared::new(parent.mm.lock().fork_into(space)?)
    };
    let ctx = platform.new_context()?;
    let mut regs = parent.regs;
    regs.rax = 0;
    if args.stack != 0 {
        regs.rsp = args.stack;
    }
    if f & CLONE_SETTLS != 0 {
        regs.fs_base = args.tls;
    }
    let thread = f & CLONE_THREAD != 0;
    let tg = if thread {
        parent.tg.share()
    } else {
        let g = parent.tg.get();
        // CLONE_PARENT: the new process is its parent's sibling, and its parent is told of
        // its exit as of the caller's (Linux ignores the signal asked for).
        let exit_signal = if f & CLONE_PARENT != 0 {
            g.exit_signal
        } else {
            args.exit_signal
        };
        let mut tg = ThreadGroup::new(
            ppid,
            (g.pgid, g.sid),
            g.rlimits,
            g.exe_path.clone(),
            g.cmdline.clone(),
            exit_signal,
        );
        tg.ctty = g.ctty.clone();
        Shared::new(tg)
    };
    let mut child: Task<P> = Task::new(TaskParts {
        tid,
        pid: if thread { parent.pid } else { tid },
        regs,
        mm,
        ctx,
        files: if f & CLONE_FILES != 0 {
            parent.files.share()
        } else {
            parent.files.copy()
        },
        fs: if f & CLONE_FS != 0 {
            parent.fs.share()
        } else {
            parent.fs.copy()
        },
        sighand: if f & CLONE_SIGHAND != 0 {
            parent.sighand.share()
        } else {
            parent.sighand.copy()
        },
        tg,
        blocked: parent.signals.blocked,
        // A new thread on its own stack has no alternate stack (Linux clears it when the
        // memory is shared).
        altstack: if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
            (0, 0, false)
        } else {
            parent.signals.altstack
        },
        comm: parent.comm,
    });
    child.nice = parent.nice;
    // The new task's FPU state is the parent's at the clone.
    let fx = {
        let mut m = parent.mm.lock();
        parent.ctx.fpu_state(&mut m.space)
    };
    if let Ok(fx) = fx {
        let mut m = child.mm.lock();
        let _: Result<(), Errno> = child.ctx.set_fpu_state(&mut m.space, &fx);
    }
    let _ = k;
    Ok(child)
}

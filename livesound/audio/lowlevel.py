"""Machine-level helpers for the audio plane, as numba intrinsics.

Numba has no atomics or fences of its own. The publication protocol between
the control plane and the audio callback needs acquire/release ordering, the
callback needs to turn the addresses in its user data back into arrays, and
the engine times its callback with the CPU's cycle counter. Each helper here
compiles to one or two LLVM instructions: no calls, no allocation.
"""

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def _element_pointer(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [idx])


@intrinsic
def load_acquire(typingctx, arr, idx):
    """``arr[idx]`` of an int64 array, with acquire ordering."""

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return types.int64(arr, idx), codegen


@intrinsic
def store_release(typingctx, arr, idx, value):
    """``arr[idx] = value`` on an int64 array, with release ordering."""

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        val = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(val, ptr, ordering="release", align=8)
        return context.get_dummy_value()

    return types.void(arr, idx, value), codegen


def _pointer_intrinsic(elem):
    @intrinsic
    def as_pointer(typingctx, address):
        def codegen(context, builder, sig, args):
            lltype = context.get_value_type(elem)
            return builder.inttoptr(args[0], lltype.as_pointer())

        return types.CPointer(elem)(address), codegen

    return as_pointer


f64_pointer = _pointer_intrinsic(types.float64)
f32_pointer = _pointer_intrinsic(types.float32)
i64_pointer = _pointer_intrinsic(types.int64)
c128_pointer = _pointer_intrinsic(types.complex128)


@intrinsic
def cycle_counter(typingctx):
    """The CPU's timestamp counter (monotonic on constant-TSC machines)."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(
            builder.module, fnty, "llvm.readcyclecounter"
        )
        return builder.call(fn, [])

    return types.int64(), codegen


def _mxcsr(builder, name: str, slot) -> None:
    """``llvm.x86.sse.stmxcsr``/``ldmxcsr`` on an i32 stack slot."""
    i8p = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i8p])
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.x86.sse.{name}")
    builder.call(fn, [builder.bitcast(slot, i8p)])


@intrinsic
def flush_denormals(typingctx):
    """Set FTZ and DAZ in this thread's MXCSR; return the previous MXCSR.

    Denormal arithmetic is 10-100x slower on x86; decaying filter states hit
    it after every note. On other CPUs this is a no-op returning 0.
    """

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        if not X86:
            return ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        _mxcsr(builder, "stmxcsr", slot)
        old = builder.load(slot)
        builder.store(builder.or_(old, ir.Constant(i32, 0x8040)), slot)
        _mxcsr(builder, "ldmxcsr", slot)
        return old

    return types.int32(), codegen


@intrinsic
def restore_fpu(typingctx, old):
    """Restore the MXCSR returned by :func:`flush_denormals`."""

    def codegen(context, builder, sig, args):
        if X86:
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr(builder, "ldmxcsr", slot)
        return context.get_dummy_value()

    return types.void(old), codegen


def _bitcast_intrinsic(src, dst):
    @intrinsic
    def bitcast(typingctx, value):
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    return bitcast


f64_bits = _bitcast_intrinsic(types.float64, types.int64)
bits_f64 = _bitcast_intrinsic(types.int64, types.float64)


def _call_c(builder, address, args, ret=32):
    """Call the C function at ``address``: int32 args stay ints, the rest
    become pointers; returns the int result (``ret`` bits: 64 for a
    pointer)."""
    fnty = ir.FunctionType(ir.IntType(ret), [a.type for a in args])
    return builder.call(builder.inttoptr(address, fnty.as_pointer()), args)


def _as_c_args(builder, args, kinds):
    i8p = ir.IntType(8).as_pointer()
    out = []
    for a, kind in zip(args, kinds, strict=True):
        if kind == "p":
            null = ir.Constant(i8p, None)
            out.append(builder.inttoptr(a, i8p) if a is not None else null)
        elif kind == "l":
            out.append(a)
        else:
            out.append(builder.trunc(a, ir.IntType(32)))
    return out


@intrinsic
def call_int_function(typingctx, address):
    """Call the C function ``int f(void)`` at ``address`` (e.g. gettid)."""

    def codegen(context, builder, sig, args):
        return builder.sext(_call_c(builder, args[0], []), ir.IntType(64))

    return types.int64(address), codegen


@intrinsic
def call_buffer_function(typingctx, address, handle, frames):
    """``(intptr) f((void *) handle, (uint32) frames)`` at ``address``: the
    pointer-returning call of ``jack_port_get_buffer``."""

    def codegen(context, builder, sig, args):
        c_args = _as_c_args(builder, args[1:], "pi")
        return _call_c(builder, args[0], c_args, ret=64)

    return types.int64(address, handle, frames), codegen


@intrinsic
def call_stream_callback(typingctx, address, inp, out, frames, status, user):
    """Call a PortAudio stream callback at ``address`` (no time info)."""

    def codegen(context, builder, sig, args):
        inp_, out_, frames_, status_, user_ = args[1:]
        c_args = _as_c_args(builder, [inp_, out_, frames_, None, status_, user_],
                            "pplplp")  # fmt: skip
        return _call_c(builder, args[0], c_args)

    return types.int32(address, inp, out, frames, status, user), codegen


@intrinsic
def clock_gettime_at(typingctx, address, clock, timespec):
    """``clock_gettime(clock, (struct timespec *) timespec)`` via its address."""

    def codegen(context, builder, sig, args):
        c_args = _as_c_args(builder, args[1:], "ip")
        return _call_c(builder, args[0], c_args)

    return types.int32(address, clock, timespec), codegen


@intrinsic
def clock_nanosleep_at(typingctx, address, clock, flags, timespec):
    """``clock_nanosleep(clock, flags, timespec, NULL)`` via its address."""

    def codegen(context, builder, sig, args):
        c_args = _as_c_args(builder, [*args[1:], None], "iipp")
        return _call_c(builder, args[0], c_args)

    return types.int32(address, clock, flags, timespec), codegen

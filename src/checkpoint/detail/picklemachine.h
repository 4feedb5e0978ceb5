#pragma once

// The restricted pickle interpreter behind unpickle(), private to its three sources:
//   pickleunpickler.cpp  the opcode table and one handler per opcode family, the stack and memo;
//   pickleglobals.cpp    the allow lists: which globals a REDUCE or NEWOBJ turns into values
//                        (tensors, OrderedDict, torch.Size, numpy arrays, ...), everything else
//                        inert;
//   pickleconvert.cpp    the object graph to Values, with the warnings and their places.

#include "checkpoint/detail/pickleunpickler.h"

#include <QHash>
#include <QtEndian>

#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

namespace ifs::ckpt::detail::pickle {

inline bool checkedMul(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

inline bool checkedAdd(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_add_overflow(a, b, out);
}

// --- The object graph of a running pickle --------------------------------------------------------
//
// Python's unpickler builds mutable objects that the memo and the stack share: a dict is memoized
// empty and filled later, a numpy dtype gets its byte order from a BUILD after being memoized. The
// implicitly shared Value would detach on each mutation, so the machine works on its own graph of
// objects (an arena, freed flat: no recursion when a deep graph dies) and converts it to Values
// once the pickle has run.

enum class Kind : quint8 {
    Leaf, ///< a finished immutable Value (None, numbers, str, bytes, tensors, ...)
    BigInt, ///< an int past 64 bits, kept as text
    Tuple,
    List,
    Dict,
    OrderedDict,
    Set,
    FrozenSet,
    Global, ///< a class or function a pickle names; never looked up, never called
    Object, ///< an inert instance of a class
    Storage, ///< a storage from a persistent id
    NumpyDType, ///< numpy.dtype, byte order set by BUILD
    NumpyArray, ///< numpy's _reconstruct: an array waiting for its BUILD state
};

struct Obj;

struct Extra
{
    QString module; ///< Global, Object; BigInt: its digits
    QString name;
    std::vector<Obj *> items; ///< Tuple, List, Set; an Object's APPENDs
    std::vector<std::pair<Obj *, Obj *>> entries; ///< Dict; an Object's SETITEMs
    QHash<QString, qsizetype> stringKeys; ///< dict deduplication, str keys
    QHash<qint64, qsizetype> intKeys; ///< dict deduplication, int keys
    Obj *args = nullptr;
    Obj *state = nullptr;
    StorageRef storage;
    char numpyKind = 0; ///< 'f', 'i', 'u', 'b', 'c', 'O', ...
    int numpySize = 0;
    char numpyOrder = '<';
    bool numpySupported = true;
    QString warning; ///< why this object is inert; emitted with its place
    bool quietWarning = false;
};

struct Obj
{
    Kind kind = Kind::Leaf;
    quint8 conversion = 0; ///< 0 not yet, 1 in progress (a cycle if met again), 2 done
    Value value; ///< Leaf: the value; others: the converted value once done
    qint64 expanded = 1;
    std::unique_ptr<Extra> x;

    Extra &extra()
    {
        if (!x)
            x = std::make_unique<Extra>();
        return *x;
    }
};

inline bool isLeaf(const Obj *o, Value::Kind kind)
{
    return o->kind == Kind::Leaf && o->value.kind() == kind;
}

inline bool isInt(const Obj *o)
{
    return o->kind == Kind::Leaf && (o->value.isInt() || o->value.isBool());
}

inline bool isString(const Obj *o)
{
    return isLeaf(o, Value::Kind::String);
}

inline QString qualified(const Obj *o)
{
    return o->x ? o->x->module + u'.' + o->x->name : QString();
}

/// Whether a value carries nothing: None, an empty dict, or a tuple/list of such values. Walks
/// without recursion and visits each container once, so a list that contains itself (or nests
/// thousands of levels) is answered, not a stack overflow.
bool isEmptyState(const Obj *o);

/// Where a value sits in the tree being converted, for warnings: root["model"][3].weight.
struct PathLink
{
    const PathLink *parent = nullptr;
    enum Step { Root, Key, Index, Attribute } step = Root;
    const Value *key = nullptr;
    qsizetype index = 0;
};

QString pathText(const PathLink *link);

/// numpy's spelling of a dtype: "<f4", ">i8", "|b1".
QString numpyName(const Extra &x);

// --- The machine ---------------------------------------------------------------------------------

class Machine;

/// An allowed global being called (REDUCE, or copyreg's helpers), as its handler sees it.
struct Call
{
    Obj *callable;
    Obj *argsTuple;
    const std::vector<Obj *> &args;
    const QString &module;
    const QString &name;
    const QString &full; ///< module.name
    Kind kind; ///< the allow-list entry's container kind, for the handlers that build one
};

/// An allowed class being instantiated (NEWOBJ, INST, OBJ, copyreg's __newobj__).
struct Instance
{
    const QString &name; ///< module.name
    const std::vector<Obj *> &args;
    Kind kind; ///< the allow-list entry's container kind
};

class Machine
{
public:
    Machine(const char *data, qint64 size, qint64 start, const UnpickleOptions &options)
        : m_data(data)
        , m_size(size)
        , m_pos(start)
        , m_options(options)
    { }

    Result<Unpickled> run();

    /// "BINPUT", "STACK_GLOBAL", or "unknown opcode 0xNN".
    static QString opcodeName(quint8 op);

private:
    using OpHandler = Status (Machine::*)(quint8 op);
    /// One opcode of protocols 0 to 5: its name for messages and the family that runs it.
    struct Opcode
    {
        quint8 code;
        const char *name;
        OpHandler run;
    };
    static const Opcode kOpcodes[];
    static const Opcode *findOpcode(quint8 op);

    using CallHandler = Result<Obj *> (Machine::*)(const Call &call);
    /// A callable a pickle may REDUCE to something other than an inert object. A null `name`
    /// stands for every other name of the module.
    struct AllowedCall
    {
        const char16_t *module;
        const char16_t *name;
        CallHandler handler;
        Kind kind = Kind::Leaf;
    };
    static const AllowedCall kAllowedCalls[];

    using ClassHandler = Result<Obj *> (Machine::*)(const Instance &instance);
    /// A class a pickle may instantiate as a container rather than an inert object.
    struct AllowedClass
    {
        const char16_t *module;
        const char16_t *name;
        ClassHandler handler;
        Kind kind = Kind::Leaf;
    };
    static const AllowedClass kAllowedClasses[];

    // --- errors --------------------------------------------------------------------------------
    Error fail(const QString &reason) const
    {
        return Error{QStringLiteral("%1 is damaged: %2 (%3 at byte %4)")
                         .arg(m_options.name, reason, opcodeName(m_op))
                         .arg(m_opStart)};
    }
    Error endsEarly() const;

    // --- reading -------------------------------------------------------------------------------
    bool has(qint64 count) const { return count >= 0 && count <= m_size - m_pos; }
    template<typename T>
    T readLittle()
    {
        const T value = qFromLittleEndian<T>(m_data + m_pos);
        m_pos += sizeof(T);
        return value;
    }
    /// The bytes up to the next newline (which is skipped); nullopt at the end of the data.
    std::optional<QByteArray> readLine();
    /// The length before a counted string or bytes opcode's data.
    Result<qint64> readCount(quint8 op);

    // --- objects -------------------------------------------------------------------------------
    Result<Obj *> make(Kind kind);
    Result<Obj *> leaf(Value value)
    {
        Result<Obj *> o = make(Kind::Leaf);
        if (o)
            o.value()->value = std::move(value);
        return o;
    }
    Result<Obj *> container(Kind kind, std::vector<Obj *> items)
    {
        Result<Obj *> o = make(kind);
        if (o)
            o.value()->x->items = std::move(items);
        return o;
    }
    Result<Obj *> global(QString module, QString name);
    Result<Obj *> inert(const QString &module, const QString &name, Obj *args, QString warning);

    // --- stack ---------------------------------------------------------------------------------
    qsizetype fence() const { return m_marks.empty() ? 0 : m_marks.back(); }
    Status push(Result<Obj *> o)
    {
        if (!o)
            return o.error();
        m_stack.push_back(o.value());
        return success();
    }
    Result<Obj *> pop()
    {
        if (qsizetype(m_stack.size()) <= fence())
            return fail(QStringLiteral("stack underflow"));
        Obj *o = m_stack.back();
        m_stack.pop_back();
        return o;
    }
    Result<Obj *> top()
    {
        if (qsizetype(m_stack.size()) <= fence())
            return fail(QStringLiteral("stack underflow"));
        return m_stack.back();
    }
    Result<std::vector<Obj *>> popMark();

    // --- opcode families (pickleunpickler.cpp) -------------------------------------------------
    Result<Unpickled> stop();
    Status opFraming(quint8 op); // PROTO FRAME
    Status opStack(quint8 op); // MARK POP POP_MARK DUP
    Status opConstant(quint8 op); // NONE NEWTRUE NEWFALSE
    Status opBinaryNumber(quint8 op); // BININT BININT1 BININT2 LONG1 LONG4 BINFLOAT
    Status opTextInt(quint8 op); // INT LONG
    Status opTextFloat(quint8 op); // FLOAT
    Status opCounted(quint8 op); // BINUNICODE ... BINBYTES ... BYTEARRAY8
    Status opQuotedString(quint8 op); // STRING
    Status opRawUnicode(quint8 op); // UNICODE
    Status opTuple(quint8 op); // EMPTY_TUPLE TUPLE1 TUPLE2 TUPLE3 TUPLE
    Status opListDictSet(quint8 op); // EMPTY_LIST LIST EMPTY_DICT DICT EMPTY_SET FROZENSET
    Status opAppend(quint8 op); // APPEND APPENDS ADDITEMS
    Status opSetItem(quint8 op); // SETITEM SETITEMS
    Status opGlobal(quint8 op); // GLOBAL STACK_GLOBAL
    Status opReduce(quint8 op); // REDUCE
    Status opNewObject(quint8 op); // NEWOBJ NEWOBJ_EX INST OBJ
    Status opBuild(quint8 op); // BUILD
    Status opPersistentId(quint8 op); // PERSID BINPERSID
    Status opMemoPut(quint8 op); // PUT BINPUT LONG_BINPUT MEMOIZE
    Status opMemoGet(quint8 op); // GET BINGET LONG_BINGET
    Status opUnsupported(quint8 op); // EXT1 EXT2 EXT4 NEXT_BUFFER
    Status opReadonlyBuffer(quint8 op); // READONLY_BUFFER

    Status memoPut(quint64 index);
    Status memoGet(quint64 index);
    Status addItems(Obj *target, std::vector<Obj *> items);
    Status setItems(Obj *target, const std::vector<Obj *> &flat);
    Status dictInsert(Obj *dict, Obj *key, Obj *value);
    Status dictInsertAll(Obj *dict, const Obj *from);
    Status build(Obj *target, Obj *state);
    Result<Obj *> persistentLoad(Obj *pid);
    Result<Obj *> pushLong(const char *bytes, qint64 length);
    Result<Obj *> pyString(const QByteArray &raw);
    Result<QByteArray> bytesOf(Obj *o, const QString &what);

    // --- the allow lists (pickleglobals.cpp) ---------------------------------------------------
    Result<Obj *> reduce(Obj *callable, Obj *args);
    Result<Obj *> newObject(Obj *cls, std::vector<Obj *> args, Obj *kwargs);
    /// What every call outside the allow list gives: an inert object and a warning.
    Result<Obj *> refuse(const Call &call);
    Result<Obj *> keepInert(const Call &call, const QString &why)
    {
        return inert(call.module, call.name, call.argsTuple, why);
    }
    Result<Obj *> callRebuildTensorV2(const Call &call);
    Result<Obj *> callRebuildTensor(const Call &call);
    Result<Obj *> callRebuildParameter(const Call &call);
    Result<Obj *> callRebuildParameterWithState(const Call &call);
    Result<Obj *> callDeviceTensorFromNumpy(const Call &call);
    Result<Obj *> callUnsupportedTensor(const Call &call);
    Result<Obj *> callRebuildFromType(const Call &call);
    Result<Obj *> callSize(const Call &call);
    Result<Obj *> callDevice(const Call &call);
    Result<Obj *> callCountingDict(const Call &call);
    Result<Obj *> callDict(const Call &call);
    Result<Obj *> callSequence(const Call &call);
    Result<Obj *> callBytes(const Call &call);
    Result<Obj *> callEncode(const Call &call);
    Result<Obj *> callValueType(const Call &call);
    Result<Obj *> callReconstructor(const Call &call);
    Result<Obj *> callNewObj(const Call &call);
    Result<Obj *> callNewObjEx(const Call &call);
    Result<Obj *> callNumpyReconstruct(const Call &call);
    Result<Obj *> callNumpyScalar(const Call &call);
    Result<Obj *> callNumpyDType(const Call &call);
    Result<Obj *> callNumpyFromBuffer(const Call &call);
    Result<Obj *> callScriptContainer(const Call &call);
    Result<Obj *> callLoadFromBytes(const Call &call);
    Result<Obj *> newEmpty(const Instance &instance);
    Result<Obj *> newCountingDict(const Instance &instance);
    Result<Obj *> newFrozenSet(const Instance &instance);
    Result<Obj *> newTuple(const Instance &instance);

    // --- torch, numpy (pickleglobals.cpp) ------------------------------------------------------
    Result<Obj *> rebuildTensor(Obj *callable, const std::vector<Obj *> &args, bool v2);
    Result<Obj *> rebuildParameter(Obj *callable, Obj *argsTuple, const std::vector<Obj *> &args,
                                   bool withState);
    Result<Obj *> numpyDType(const std::vector<Obj *> &args);
    Result<Obj *> numpyScalar(Obj *callable, Obj *argsTuple, const std::vector<Obj *> &args);
    Result<Obj *> numpyArray(Obj *dtype, Obj *shape, bool fortran, const QByteArray &bytes,
                             Obj *callable, Obj *argsTuple);
    Status numpyBuild(Obj *array, Obj *state);

    // --- conversion (pickleconvert.cpp) --------------------------------------------------------
    /// One object being converted: where it sits, and the values its subtree expands to.
    struct Conversion
    {
        int depth;
        const PathLink *path;
        bool quiet;
        qint64 expanded = 1;
    };
    Result<Value> convert(Obj *o, int depth, const PathLink *path, bool quiet);
    Status countChild(Conversion &c, const Obj *child);
    Status convertItems(Conversion &c, const std::vector<Obj *> &items, QList<Value> *out);
    Status convertEntries(Conversion &c, const std::vector<std::pair<Obj *, Obj *>> &entries,
                          Value::Entries *out, bool attributes, bool quiet);
    Result<Value> convertAttribute(Conversion &c, Obj *child, const QString &name, bool quiet);
    Result<Value> convertSequence(Obj *o, Conversion &c);
    Result<Value> convertDict(Obj *o, Conversion &c);
    Value convertGlobal(Obj *o, Conversion &c);
    Result<Value> convertObject(Obj *o, Conversion &c);
    Result<Value> convertObjectArgs(Extra &x, Conversion &c, bool quietInside);
    Result<Value> convertObjectState(Extra &x, Conversion &c, bool quietInside);
    void noteModuleClass(const Extra &x, bool *module, bool *script);
    void warn(const PathLink *path, const QString &text, bool quiet);
    /// The object's own warning, at the first place it is met outside a quiet context.
    void warnOnce(Obj *o, const PathLink *path, bool quiet)
    {
        if (quiet || !o->x || o->x->warning.isEmpty() || o->x->quietWarning)
            return;
        warn(path, o->x->warning, false);
        o->x->quietWarning = true;
    }

    const char *m_data;
    qint64 m_size;
    qint64 m_pos;
    const UnpickleOptions &m_options;
    quint8 m_op = 0;
    qint64 m_opStart = 0;
    int m_protocol = 0;
    int m_reduceDepth = 0;

    std::deque<Obj> m_objects;
    std::vector<Obj *> m_stack;
    std::vector<qsizetype> m_marks;
    QHash<quint64, Obj *> m_memo;

    Unpickled m_result;
    int m_warningCount = 0;
    QStringList m_moduleClasses; // in the order met, outermost first
    QStringList m_scriptClasses;
};

/// Warnings kept per pickle; the rest are counted.
constexpr int kMaxWarnings = 50;

} // namespace ifs::ckpt::detail::pickle

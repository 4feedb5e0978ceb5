#include "checkpoint/detail/pickleunpickler.h"

#include <QHash>
#include <QSet>
#include <QtEndian>

#include <QStringDecoder>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <vector>

namespace ifs::ckpt::detail {

namespace {

bool checkedMul(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool checkedAdd(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_add_overflow(a, b, out);
}

// Every opcode of protocols 0 to 5, for messages.
constexpr std::pair<quint8, const char *> kOpcodeNames[] = {
    {'(', "MARK"},
    {'.', "STOP"},
    {'0', "POP"},
    {'1', "POP_MARK"},
    {'2', "DUP"},
    {'F', "FLOAT"},
    {'I', "INT"},
    {'J', "BININT"},
    {'K', "BININT1"},
    {'L', "LONG"},
    {'M', "BININT2"},
    {'N', "NONE"},
    {'P', "PERSID"},
    {'Q', "BINPERSID"},
    {'R', "REDUCE"},
    {'S', "STRING"},
    {'T', "BINSTRING"},
    {'U', "SHORT_BINSTRING"},
    {'V', "UNICODE"},
    {'X', "BINUNICODE"},
    {'a', "APPEND"},
    {'b', "BUILD"},
    {'c', "GLOBAL"},
    {'d', "DICT"},
    {'}', "EMPTY_DICT"},
    {'e', "APPENDS"},
    {'g', "GET"},
    {'h', "BINGET"},
    {'i', "INST"},
    {'j', "LONG_BINGET"},
    {'l', "LIST"},
    {']', "EMPTY_LIST"},
    {'o', "OBJ"},
    {'p', "PUT"},
    {'q', "BINPUT"},
    {'r', "LONG_BINPUT"},
    {'s', "SETITEM"},
    {'t', "TUPLE"},
    {')', "EMPTY_TUPLE"},
    {'u', "SETITEMS"},
    {'G', "BINFLOAT"},
    {0x80, "PROTO"},
    {0x81, "NEWOBJ"},
    {0x82, "EXT1"},
    {0x83, "EXT2"},
    {0x84, "EXT4"},
    {0x85, "TUPLE1"},
    {0x86, "TUPLE2"},
    {0x87, "TUPLE3"},
    {0x88, "NEWTRUE"},
    {0x89, "NEWFALSE"},
    {0x8a, "LONG1"},
    {0x8b, "LONG4"},
    {'B', "BINBYTES"},
    {'C', "SHORT_BINBYTES"},
    {0x8c, "SHORT_BINUNICODE"},
    {0x8d, "BINUNICODE8"},
    {0x8e, "BINBYTES8"},
    {0x8f, "EMPTY_SET"},
    {0x90, "ADDITEMS"},
    {0x91, "FROZENSET"},
    {0x92, "NEWOBJ_EX"},
    {0x93, "STACK_GLOBAL"},
    {0x94, "MEMOIZE"},
    {0x95, "FRAME"},
    {0x96, "BYTEARRAY8"},
    {0x97, "NEXT_BUFFER"},
    {0x98, "READONLY_BUFFER"},
};

QString opcodeName(quint8 op)
{
    for (const auto &[code, name] : kOpcodeNames) {
        if (code == op)
            return QString::fromLatin1(name);
    }
    return QStringLiteral("unknown opcode 0x%1").arg(op, 2, 16, QLatin1Char('0'));
}

QString keyRepr(const Value &key)
{
    switch (key.kind()) {
    case Value::Kind::String: {
        QString text = key.toString();
        if (text.size() > 80)
            text = text.left(77) + u"...";
        text.replace(u'\\', QStringLiteral("\\\\")).replace(u'"', QStringLiteral("\\\""));
        return u'"' + text + u'"';
    }
    case Value::Kind::Int:
    case Value::Kind::Bool:
        return QString::number(key.toInt());
    case Value::Kind::Float:
        return QString::number(key.toDouble());
    case Value::Kind::None:
        return QStringLiteral("None");
    default:
        return u'<' + key.typeName() + u'>';
    }
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

bool isLeaf(const Obj *o, Value::Kind kind)
{
    return o->kind == Kind::Leaf && o->value.kind() == kind;
}

bool isInt(const Obj *o)
{
    return o->kind == Kind::Leaf && (o->value.isInt() || o->value.isBool());
}

bool isString(const Obj *o)
{
    return isLeaf(o, Value::Kind::String);
}

QString qualified(const Obj *o)
{
    return o->x ? o->x->module + u'.' + o->x->name : QString();
}

/// Whether a value carries nothing: None, an empty dict/tuple/list.
bool isEmptyState(const Obj *o)
{
    if (!o)
        return true;
    switch (o->kind) {
    case Kind::Leaf:
        return o->value.isNone();
    case Kind::Tuple:
    case Kind::List:
        for (const Obj *item : o->x->items) {
            if (!isEmptyState(item))
                return false;
        }
        return true;
    case Kind::Dict:
    case Kind::OrderedDict:
        return o->x->entries.empty();
    default:
        return false;
    }
}

struct PathLink
{
    const PathLink *parent = nullptr;
    enum Step { Root, Key, Index, Attribute } step = Root;
    const Value *key = nullptr;
    qsizetype index = 0;
};

QString pathText(const PathLink *link)
{
    QStringList parts;
    for (; link && link->step != PathLink::Root; link = link->parent) {
        switch (link->step) {
        case PathLink::Key:
            parts.prepend(u'[' + keyRepr(*link->key) + u']');
            break;
        case PathLink::Index:
            parts.prepend(u'[' + QString::number(link->index) + u']');
            break;
        case PathLink::Attribute:
            parts.prepend(u'.' + link->key->toString());
            break;
        case PathLink::Root:
            break;
        }
    }
    return u"root" + parts.join(QString());
}

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

private:
    // --- errors --------------------------------------------------------------------------------
    Error fail(const QString &reason) const
    {
        return Error{QStringLiteral("%1 is damaged: %2 (%3 at byte %4)")
                         .arg(m_options.name, reason, opcodeName(m_op))
                         .arg(m_opStart)};
    }
    Error endsEarly() const
    {
        if (!m_options.endIsEndOfFile) {
            return Error{QStringLiteral("%1 ends early, inside %2 at byte %3 (the "
                                        "record is damaged)")
                             .arg(m_options.name, opcodeName(m_op))
                             .arg(m_opStart)};
        }
        return Error{QStringLiteral("the file ends early: it was probably not fully written or "
                                    "downloaded (inside %1 at byte %2)")
                         .arg(m_options.name)
                         .arg(m_opStart)};
    }

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
    std::optional<QByteArray> readLine()
    {
        const void *newline = std::memchr(m_data + m_pos, '\n', size_t(m_size - m_pos));
        if (!newline)
            return std::nullopt;
        const qint64 length = static_cast<const char *>(newline) - (m_data + m_pos);
        QByteArray line(m_data + m_pos, length);
        m_pos += length + 1;
        if (line.endsWith('\r'))
            line.chop(1);
        return line;
    }

    // --- objects -------------------------------------------------------------------------------
    Result<Obj *> make(Kind kind)
    {
        if (qint64(m_objects.size()) >= m_options.maxObjects) {
            return fail(QStringLiteral("it creates more than %1 objects; refused (raise "
                                       "ReadOptions::maxPickleObjects to read it)")
                            .arg(m_options.maxObjects));
        }
        Obj &o = m_objects.emplace_back();
        o.kind = kind;
        if (kind == Kind::Leaf)
            o.conversion = 2;
        else
            o.x = std::make_unique<Extra>();
        return &o;
    }
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
    Result<std::vector<Obj *>> popMark()
    {
        if (m_marks.empty())
            return fail(QStringLiteral("no MARK to pop to"));
        const qsizetype mark = m_marks.back();
        m_marks.pop_back();
        std::vector<Obj *> items(m_stack.begin() + mark, m_stack.end());
        m_stack.resize(size_t(mark));
        return items;
    }

    // --- opcodes -------------------------------------------------------------------------------
    Status step(quint8 op);
    Status memoPut(quint64 index);
    Status memoGet(quint64 index);
    Status addItems(Obj *target, std::vector<Obj *> items);
    Status setItems(Obj *target, const std::vector<Obj *> &flat);
    Status dictInsert(Obj *dict, Obj *key, Obj *value);
    Status build(Obj *target, Obj *state);
    Result<Obj *> reduce(Obj *callable, Obj *args);
    Result<Obj *> newObject(Obj *cls, std::vector<Obj *> args, Obj *kwargs);
    Result<Obj *> persistentLoad(Obj *pid);
    Result<Obj *> pushLong(const char *bytes, qint64 length);
    Result<Obj *> pyString(const QByteArray &raw);

    // --- torch, numpy --------------------------------------------------------------------------
    Result<Obj *> rebuildTensor(Obj *callable, const std::vector<Obj *> &args, bool v2);
    Result<Obj *> rebuildParameter(Obj *callable, Obj *argsTuple, const std::vector<Obj *> &args,
                                   bool withState);
    Result<Obj *> numpyDType(const std::vector<Obj *> &args);
    Result<Obj *> numpyScalar(Obj *callable, Obj *argsTuple, const std::vector<Obj *> &args);
    Result<Obj *> numpyArray(Obj *dtype, Obj *shape, bool fortran, const QByteArray &bytes,
                             Obj *callable, Obj *argsTuple);
    Status numpyBuild(Obj *array, Obj *state);
    Result<QByteArray> bytesOf(Obj *o, const QString &what);

    // --- conversion ----------------------------------------------------------------------------
    Result<Value> convert(Obj *o, int depth, const PathLink *path, bool quiet);
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

constexpr int kMaxWarnings = 50;

void Machine::warn(const PathLink *path, const QString &text, bool quiet)
{
    if (quiet)
        return;
    ++m_warningCount;
    if (m_warningCount <= kMaxWarnings)
        m_result.warnings.append(pathText(path) + u": " + text);
}

Result<Unpickled> Machine::run()
{
    if (m_pos < 0 || m_pos > m_size)
        return Error{QStringLiteral("%1 lies outside the file").arg(m_options.name)};
    for (;;) {
        m_opStart = m_pos;
        if (!has(1))
            return endsEarly();
        m_op = quint8(m_data[m_pos++]);
        if (m_op == '.') {
            if (m_stack.empty())
                return fail(QStringLiteral("it stops with nothing on the stack"));
            Obj *root = m_stack.back();
            m_result.end = m_pos;
            m_result.protocol = m_protocol;
            PathLink path;
            Result<Value> value = convert(root, 0, &path, false);
            if (!value)
                return value.error();
            m_result.value = std::move(value).value();
            if (m_warningCount > kMaxWarnings) {
                m_result.warnings.append(
                    QStringLiteral("... and %1 more warnings").arg(m_warningCount - kMaxWarnings));
            }
            m_result.moduleClasses = m_moduleClasses;
            m_result.scriptClasses = m_scriptClasses;
            return std::move(m_result);
        }
        if (Status status = step(m_op); !status)
            return status.error();
    }
}

Status Machine::step(quint8 op)
{
    switch (op) {
    case 0x80: { // PROTO
        if (!has(1))
            return endsEarly();
        m_protocol = quint8(m_data[m_pos++]);
        if (m_protocol > 5)
            return fail(QStringLiteral("pickle protocol %1 is newer than 5").arg(m_protocol));
        return success();
    }
    case 0x95: { // FRAME: only a hint for buffering; the length must still fit
        if (!has(8))
            return endsEarly();
        const quint64 length = readLittle<quint64>();
        if (length > quint64(m_size - m_pos))
            return endsEarly();
        return success();
    }
    case '(':
        m_marks.push_back(qsizetype(m_stack.size()));
        return success();
    case '0': // POP: Python's pops a MARK when nothing is above it
        if (!m_marks.empty() && qsizetype(m_stack.size()) == m_marks.back()) {
            m_marks.pop_back();
            return success();
        }
        return pop() ? success() : fail(QStringLiteral("stack underflow"));
    case '1': // POP_MARK
        return popMark() ? success() : fail(QStringLiteral("no MARK to pop to"));
    case '2': { // DUP
        Result<Obj *> o = top();
        if (!o)
            return o.error();
        m_stack.push_back(o.value());
        return success();
    }
    case 'N':
        return push(leaf(Value()));
    case 0x88:
        return push(leaf(Value(true)));
    case 0x89:
        return push(leaf(Value(false)));
    case 'J':
        if (!has(4))
            return endsEarly();
        return push(leaf(Value::fromInt(readLittle<qint32>())));
    case 'K':
        if (!has(1))
            return endsEarly();
        return push(leaf(Value::fromInt(quint8(m_data[m_pos++]))));
    case 'M':
        if (!has(2))
            return endsEarly();
        return push(leaf(Value::fromInt(readLittle<quint16>())));
    case 0x8a: { // LONG1
        if (!has(1))
            return endsEarly();
        const qint64 length = quint8(m_data[m_pos++]);
        if (!has(length))
            return endsEarly();
        const char *bytes = m_data + m_pos;
        m_pos += length;
        return push(pushLong(bytes, length));
    }
    case 0x8b: { // LONG4
        if (!has(4))
            return endsEarly();
        const qint32 length = readLittle<qint32>();
        if (length < 0)
            return fail(QStringLiteral("negative length"));
        if (!has(length))
            return endsEarly();
        const char *bytes = m_data + m_pos;
        m_pos += length;
        return push(pushLong(bytes, length));
    }
    case 'G': {
        if (!has(8))
            return endsEarly();
        const quint64 bits = qFromBigEndian<quint64>(m_data + m_pos);
        m_pos += 8;
        return push(leaf(Value(std::bit_cast<double>(bits))));
    }
    case 'I':
    case 'L': { // INT, LONG: decimal text; INT "01"/"00" are True/False
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        if (op == 'I' && *line == "01")
            return push(leaf(Value(true)));
        if (op == 'I' && *line == "00")
            return push(leaf(Value(false)));
        QByteArray digits = line->trimmed();
        if (op == 'L' && digits.endsWith('L'))
            digits.chop(1);
        bool ok = false;
        const qint64 value = digits.toLongLong(&ok, 10);
        if (ok)
            return push(leaf(Value::fromInt(value)));
        const bool negative = digits.startsWith('-');
        const QByteArray magnitude = negative ? digits.mid(1) : digits;
        if (magnitude.isEmpty() || !std::all_of(magnitude.begin(), magnitude.end(), [](char c) {
                return c >= '0' && c <= '9';
            })) {
            return fail(QStringLiteral("invalid integer text"));
        }
        Result<Obj *> big = make(Kind::BigInt);
        if (big)
            big.value()->x->module = QString::fromLatin1(digits);
        return push(std::move(big));
    }
    case 'F': {
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        bool ok = false;
        const double value = line->trimmed().toDouble(&ok);
        const QByteArray text = line->trimmed().toLower();
        if (!ok && text != "nan" && text != "inf" && text != "-inf")
            return fail(QStringLiteral("invalid float text"));
        return push(leaf(Value(ok                  ? value
                                   : text == "nan" ? std::numeric_limits<double>::quiet_NaN()
                                   : text == "inf" ? std::numeric_limits<double>::infinity()
                                                   : -std::numeric_limits<double>::infinity())));
    }
    case 'X':
    case 0x8c:
    case 0x8d:
    case 'T':
    case 'U':
    case 'B':
    case 'C':
    case 0x8e:
    case 0x96: {
        qint64 length = 0;
        if (op == 0x8c || op == 'U' || op == 'C') {
            if (!has(1))
                return endsEarly();
            length = quint8(m_data[m_pos++]);
        } else if (op == 'X' || op == 'B' || op == 'T') {
            if (!has(4))
                return endsEarly();
            length = op == 'T' ? qint64(readLittle<qint32>()) : qint64(readLittle<quint32>());
        } else {
            if (!has(8))
                return endsEarly();
            const quint64 wide = readLittle<quint64>();
            if (wide > quint64(std::numeric_limits<qint64>::max()))
                return endsEarly();
            length = qint64(wide);
        }
        if (length < 0)
            return fail(QStringLiteral("negative length"));
        if (!has(length))
            return endsEarly();
        const char *bytes = m_data + m_pos;
        m_pos += length;
        if (op == 'X' || op == 0x8c || op == 0x8d)
            return push(leaf(Value(QString::fromUtf8(bytes, length))));
        if (op == 'T' || op == 'U')
            return push(pyString(QByteArray(bytes, length)));
        return push(leaf(Value::bytes(QByteArray(bytes, length))));
    }
    case 'S': { // STRING: a quoted Python 2 str literal
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        QByteArray text = *line;
        if (text.size() < 2 || (text.front() != '\'' && text.front() != '"')
            || text.back() != text.front()) {
            return fail(QStringLiteral("STRING argument is not quoted"));
        }
        text = text.mid(1, text.size() - 2);
        QByteArray out;
        out.reserve(text.size());
        for (qsizetype i = 0; i < text.size(); ++i) {
            const char c = text[i];
            if (c != '\\' || i + 1 >= text.size()) {
                out.append(c);
                continue;
            }
            const char e = text[++i];
            switch (e) {
            case 'n':
                out.append('\n');
                break;
            case 'r':
                out.append('\r');
                break;
            case 't':
                out.append('\t');
                break;
            case 'a':
                out.append('\a');
                break;
            case 'b':
                out.append('\b');
                break;
            case 'f':
                out.append('\f');
                break;
            case 'v':
                out.append('\v');
                break;
            case 'x':
                if (i + 2 < text.size()) {
                    bool ok = false;
                    const int value = text.mid(i + 1, 2).toInt(&ok, 16);
                    if (ok) {
                        out.append(char(value));
                        i += 2;
                        break;
                    }
                }
                return fail(QStringLiteral("invalid \\x escape in STRING"));
            default:
                if (e >= '0' && e <= '7') {
                    int value = e - '0';
                    for (int k = 0;
                         k < 2 && i + 1 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '7';
                         ++k) {
                        value = value * 8 + (text[++i] - '0');
                    }
                    out.append(char(value & 0xFF));
                } else {
                    out.append(e); // \\, \', \" and unknown escapes keep the character
                }
            }
        }
        return push(pyString(out));
    }
    case 'V': { // UNICODE: raw-unicode-escape text
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        QString text;
        const QByteArray &raw = *line;
        for (qsizetype i = 0; i < raw.size(); ++i) {
            const char c = raw[i];
            if (c == '\\' && i + 1 < raw.size() && (raw[i + 1] == 'u' || raw[i + 1] == 'U')) {
                const int digits = raw[i + 1] == 'u' ? 4 : 8;
                bool ok = false;
                const uint code = raw.mid(i + 2, digits).toUInt(&ok, 16);
                if (ok && i + 2 + digits <= raw.size() && code <= 0x10FFFF) {
                    const char32_t point = char32_t(code);
                    text += QString::fromUcs4(&point, 1);
                    i += 1 + digits;
                    continue;
                }
            }
            text += QChar(char16_t(uchar(c)));
        }
        return push(leaf(Value(text)));
    }
    case ')':
        return push(container(Kind::Tuple, {}));
    case 0x85:
    case 0x86:
    case 0x87: {
        const size_t count = op - 0x84;
        if (m_stack.size() < size_t(fence()) + count)
            return fail(QStringLiteral("stack underflow"));
        std::vector<Obj *> items(m_stack.end() - count, m_stack.end());
        m_stack.resize(m_stack.size() - count);
        return push(container(Kind::Tuple, std::move(items)));
    }
    case 't': {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        return push(container(Kind::Tuple, std::move(items).value()));
    }
    case ']':
        return push(container(Kind::List, {}));
    case 'l': {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        return push(container(Kind::List, std::move(items).value()));
    }
    case '}':
        return push(make(Kind::Dict));
    case 'd': {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        Result<Obj *> dict = make(Kind::Dict);
        if (!dict)
            return dict.error();
        if (Status status = setItems(dict.value(), items.value()); !status)
            return status;
        return push(dict);
    }
    case 0x8f:
        return push(container(Kind::Set, {}));
    case 0x91: {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        return push(container(Kind::FrozenSet, std::move(items).value()));
    }
    case 'a': {
        Result<Obj *> item = pop();
        if (!item)
            return item.error();
        Result<Obj *> target = top();
        if (!target)
            return target.error();
        return addItems(target.value(), {item.value()});
    }
    case 'e':
    case 0x90: { // APPENDS, ADDITEMS
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        Result<Obj *> target = top();
        if (!target)
            return target.error();
        if (op == 0x90 && target.value()->kind != Kind::Set && target.value()->kind != Kind::Object)
            return fail(QStringLiteral("ADDITEMS to something that is not a set"));
        return addItems(target.value(), std::move(items).value());
    }
    case 's': {
        Result<Obj *> value = pop();
        if (!value)
            return value.error();
        Result<Obj *> key = pop();
        if (!key)
            return key.error();
        Result<Obj *> target = top();
        if (!target)
            return target.error();
        return setItems(target.value(), {key.value(), value.value()});
    }
    case 'u': {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        Result<Obj *> target = top();
        if (!target)
            return target.error();
        return setItems(target.value(), items.value());
    }
    case 'c': { // GLOBAL module\nname\n
        std::optional<QByteArray> module = readLine();
        std::optional<QByteArray> name = module ? readLine() : std::nullopt;
        if (!name)
            return endsEarly();
        return push(global(QString::fromUtf8(*module), QString::fromUtf8(*name)));
    }
    case 0x93: { // STACK_GLOBAL
        Result<Obj *> name = pop();
        if (!name)
            return name.error();
        Result<Obj *> module = pop();
        if (!module)
            return module.error();
        if (!isString(module.value()) || !isString(name.value()))
            return fail(QStringLiteral("STACK_GLOBAL needs two str"));
        return push(global(module.value()->value.toString(), name.value()->value.toString()));
    }
    case 'R': {
        Result<Obj *> args = pop();
        if (!args)
            return args.error();
        Result<Obj *> callable = pop();
        if (!callable)
            return callable.error();
        return push(reduce(callable.value(), args.value()));
    }
    case 0x81: { // NEWOBJ cls args
        Result<Obj *> args = pop();
        if (!args)
            return args.error();
        Result<Obj *> cls = pop();
        if (!cls)
            return cls.error();
        if (args.value()->kind != Kind::Tuple)
            return fail(QStringLiteral("NEWOBJ's arguments are not a tuple"));
        return push(newObject(cls.value(), args.value()->x->items, nullptr));
    }
    case 0x92: { // NEWOBJ_EX cls args kwargs
        Result<Obj *> kwargs = pop();
        if (!kwargs)
            return kwargs.error();
        Result<Obj *> args = pop();
        if (!args)
            return args.error();
        Result<Obj *> cls = pop();
        if (!cls)
            return cls.error();
        if (args.value()->kind != Kind::Tuple || kwargs.value()->kind != Kind::Dict)
            return fail(QStringLiteral("NEWOBJ_EX needs a tuple and a dict"));
        return push(newObject(cls.value(), args.value()->x->items, kwargs.value()));
    }
    case 'i': { // INST module\nname\n with MARK args
        std::optional<QByteArray> module = readLine();
        std::optional<QByteArray> name = module ? readLine() : std::nullopt;
        if (!name)
            return endsEarly();
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        Result<Obj *> cls = global(QString::fromUtf8(*module), QString::fromUtf8(*name));
        if (!cls)
            return cls.error();
        return push(newObject(cls.value(), std::move(items).value(), nullptr));
    }
    case 'o': { // OBJ: MARK cls args...
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        if (items.value().empty())
            return fail(QStringLiteral("OBJ without a class"));
        Obj *cls = items.value().front();
        std::vector<Obj *> args(items.value().begin() + 1, items.value().end());
        return push(newObject(cls, std::move(args), nullptr));
    }
    case 'b': {
        Result<Obj *> state = pop();
        if (!state)
            return state.error();
        Result<Obj *> target = top();
        if (!target)
            return target.error();
        return build(target.value(), state.value());
    }
    case 'P': {
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        Result<Obj *> pid = leaf(Value(QString::fromUtf8(*line)));
        if (!pid)
            return pid.error();
        return push(persistentLoad(pid.value()));
    }
    case 'Q': {
        Result<Obj *> pid = pop();
        if (!pid)
            return pid.error();
        return push(persistentLoad(pid.value()));
    }
    case 'p': {
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        bool ok = false;
        const quint64 index = line->toULongLong(&ok);
        return ok ? memoPut(index) : fail(QStringLiteral("invalid PUT index"));
    }
    case 'q':
        if (!has(1))
            return endsEarly();
        return memoPut(quint8(m_data[m_pos++]));
    case 'r':
        if (!has(4))
            return endsEarly();
        return memoPut(readLittle<quint32>());
    case 0x94:
        return memoPut(quint64(m_memo.size()));
    case 'g': {
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        bool ok = false;
        const quint64 index = line->toULongLong(&ok);
        return ok ? memoGet(index) : fail(QStringLiteral("invalid GET index"));
    }
    case 'h':
        if (!has(1))
            return endsEarly();
        return memoGet(quint8(m_data[m_pos++]));
    case 'j':
        if (!has(4))
            return endsEarly();
        return memoGet(readLittle<quint32>());
    case 0x82:
    case 0x83:
    case 0x84:
        return fail(QStringLiteral("the copyreg extension registry is not supported"));
    case 0x97:
        return fail(QStringLiteral("out-of-band buffers (protocol 5 with a buffer_callback) "
                                   "cannot be read from a file"));
    case 0x98: // READONLY_BUFFER: a flag on the buffer on top; nothing to do for bytes
        return top() ? success() : fail(QStringLiteral("stack underflow"));
    default:
        return fail(QStringLiteral("unknown opcode"));
    }
}

Status Machine::memoPut(quint64 index)
{
    Result<Obj *> o = top();
    if (!o)
        return o.error();
    m_memo.insert(index, o.value());
    return success();
}

Status Machine::memoGet(quint64 index)
{
    const auto it = m_memo.constFind(index);
    if (it == m_memo.constEnd())
        return fail(QStringLiteral("memo entry %1 was never stored").arg(index));
    m_stack.push_back(*it);
    return success();
}

Result<Obj *> Machine::pushLong(const char *bytes, qint64 length)
{
    if (length == 0)
        return leaf(Value::fromInt(0));
    if (length <= 8) {
        quint64 raw = 0;
        for (qint64 i = length - 1; i >= 0; --i)
            raw = (raw << 8) | quint8(bytes[i]);
        if (length < 8 && (quint8(bytes[length - 1]) & 0x80))
            raw |= ~quint64(0) << (8 * length); // sign-extend
        return leaf(Value::fromInt(qint64(raw)));
    }
    // Two's complement little-endian → sign and big-endian hex digits of the magnitude.
    QByteArray magnitude(bytes, length);
    const bool negative = quint8(bytes[length - 1]) & 0x80;
    if (negative) {
        bool carry = true;
        for (char &c : magnitude) {
            c = char(~quint8(c));
            if (carry) {
                c = char(quint8(c) + 1);
                carry = quint8(c) == 0;
            }
        }
    }
    std::reverse(magnitude.begin(), magnitude.end());
    QByteArray hex = magnitude.toHex();
    while (hex.size() > 1 && hex.front() == '0')
        hex.remove(0, 1);
    Result<Obj *> big = make(Kind::BigInt);
    if (big) {
        big.value()->x->module
            = (negative ? QStringLiteral("-0x") : QStringLiteral("0x")) + QString::fromLatin1(hex);
    }
    return big;
}

/// A Python 2 str: torch.load decodes it as UTF-8; bytes that are not UTF-8 decode as Latin-1 (what
/// `encoding="latin1"` gives) rather than failing.
Result<Obj *> Machine::pyString(const QByteArray &raw)
{
    QStringDecoder decoder(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    QString text = decoder.decode(raw);
    if (decoder.hasError())
        text = QString::fromLatin1(raw);
    return leaf(Value(text));
}

Result<Obj *> Machine::global(QString module, QString name)
{
    // Python 2 names (pickle's fix_imports) and torch's own renames.
    if (module == u"__builtin__")
        module = QStringLiteral("builtins");
    else if (module == u"copy_reg")
        module = QStringLiteral("copyreg");
    else if (module == u"torch.tensor")
        module = QStringLiteral("torch._tensor");
    else if (module.startsWith(u"numpy._core"))
        module = u"numpy.core" + module.mid(11);

    if (module == u"torch") {
        if (const std::optional<DType> dtype = dtypeFromName(name))
            return leaf(Value::dtype(*dtype));
    }
    Result<Obj *> o = make(Kind::Global);
    if (o) {
        o.value()->x->module = std::move(module);
        o.value()->x->name = std::move(name);
    }
    return o;
}

Result<Obj *> Machine::inert(const QString &module, const QString &name, Obj *args, QString warning)
{
    Result<Obj *> o = make(Kind::Object);
    if (o) {
        Extra &x = *o.value()->x;
        x.module = module;
        x.name = name;
        x.args = args;
        x.warning = std::move(warning);
    }
    return o;
}

Status Machine::addItems(Obj *target, std::vector<Obj *> items)
{
    switch (target->kind) {
    case Kind::List:
    case Kind::Set:
    case Kind::Object: {
        auto &list = target->x->items;
        list.insert(list.end(), items.begin(), items.end());
        return success();
    }
    default:
        return fail(QStringLiteral("adds items to something that is not a list"));
    }
}

Status Machine::setItems(Obj *target, const std::vector<Obj *> &flat)
{
    if (flat.size() % 2 != 0)
        return fail(QStringLiteral("an odd number of items for a dict"));
    if (target->kind != Kind::Dict && target->kind != Kind::OrderedDict
        && target->kind != Kind::Object) {
        return fail(QStringLiteral("sets items of something that is not a dict"));
    }
    for (size_t i = 0; i < flat.size(); i += 2) {
        if (Status status = dictInsert(target, flat[i], flat[i + 1]); !status)
            return status;
    }
    return success();
}

/// Python's dict semantics for the keys pickles use: a repeated str or int key replaces the value
/// in place (1 and True are the same key).
Status Machine::dictInsert(Obj *dict, Obj *key, Obj *value)
{
    Extra &x = *dict->x;
    if (isString(key)) {
        const QString text = key->value.toString();
        const auto it = x.stringKeys.constFind(text);
        if (it != x.stringKeys.constEnd()) {
            x.entries[size_t(*it)].second = value;
            return success();
        }
        x.stringKeys.insert(text, qsizetype(x.entries.size()));
    } else if (isInt(key)) {
        const qint64 number = key->value.toInt();
        const auto it = x.intKeys.constFind(number);
        if (it != x.intKeys.constEnd()) {
            x.entries[size_t(*it)].second = value;
            return success();
        }
        x.intKeys.insert(number, qsizetype(x.entries.size()));
    }
    x.entries.emplace_back(key, value);
    return success();
}

Status Machine::build(Obj *target, Obj *state)
{
    switch (target->kind) {
    case Kind::Object:
    case Kind::OrderedDict: {
        Extra &x = *target->x;
        // (state, slotstate): both set attributes.
        std::vector<Obj *> parts{state};
        if (state->kind == Kind::Tuple && state->x->items.size() == 2)
            parts = state->x->items;
        for (Obj *part : parts) {
            if (isEmptyState(part) && x.state)
                continue;
            if (x.state && x.state->kind == Kind::Dict && part->kind == Kind::Dict) {
                for (const auto &[key, value] : part->x->entries) {
                    if (Status status = dictInsert(x.state, key, value); !status)
                        return status;
                }
            } else if (!isEmptyState(part) || !x.state) {
                if (part->kind == Kind::Dict && x.state == nullptr) {
                    // A copy: the same state dict may be shared (memo) with other objects.
                    Result<Obj *> copy = make(Kind::Dict);
                    if (!copy)
                        return copy.error();
                    for (const auto &[key, value] : part->x->entries) {
                        if (Status status = dictInsert(copy.value(), key, value); !status)
                            return status;
                    }
                    x.state = copy.value();
                } else {
                    x.state = part;
                }
            }
        }
        return success();
    }
    case Kind::NumpyArray:
        return numpyBuild(target, state);
    case Kind::NumpyDType: {
        // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        const auto &items = state->kind == Kind::Tuple ? state->x->items : std::vector<Obj *>{};
        if (items.size() >= 2 && isString(items[1])) {
            const QString order = items[1]->value.toString();
            if (order == u">")
                target->x->numpyOrder = '>';
            else if (order == u"<" || order == u"|" || order == u"=")
                target->x->numpyOrder = '<';
        }
        if (items.size() >= 4 && !isLeaf(items[3], Value::Kind::None))
            target->x->numpySupported = false; // a structured dtype
        if (items.size() >= 3 && !isLeaf(items[2], Value::Kind::None))
            target->x->numpySupported = false; // a sub-array dtype
        return success();
    }
    case Kind::Leaf:
        if (target->value.isTensor() && !isEmptyState(state)) {
            target->extra().warning = QStringLiteral("extra tensor state ignored (attributes set "
                                                     "on the tensor object)");
        }
        return success();
    case Kind::Global:
        target->x->warning = QStringLiteral("the pickle sets attributes on the class itself; "
                                            "ignored");
        return success();
    default:
        if (!isEmptyState(state))
            target->x->warning = QStringLiteral("extra state of a builtin container ignored");
        return success();
    }
}

Result<Obj *> Machine::persistentLoad(Obj *pid)
{
    if (!m_options.persistentLoad) {
        return fail(QStringLiteral("a persistent id (a tensor storage) outside a torch checkpoint "
                                   "container"));
    }
    PathLink path;
    Result<Value> id = convert(pid, 0, &path, true);
    if (!id)
        return id.error();
    Result<PersistentValue> loaded = m_options.persistentLoad(id.value());
    if (!loaded)
        return loaded.error();
    if (loaded.value().storage) {
        Result<Obj *> o = make(Kind::Storage);
        if (o)
            o.value()->x->storage = *loaded.value().storage;
        return o;
    }
    // Any other value (a class for legacy 'module' ids, an inert object for a storage type we do
    // not support): keep its shape as a Global when it is a bare class reference.
    const Value &value = loaded.value().value;
    if (value.isObject() && value.objectArgs().isNone() && value.state().isNone())
        return global(value.objectModule(), value.objectName());
    return leaf(value);
}

Result<QByteArray> Machine::bytesOf(Obj *o, const QString &what)
{
    if (isLeaf(o, Value::Kind::Bytes))
        return o->value.toBytes();
    if (isString(o)) {
        // Python 2 str holding binary data, decoded as Latin-1 above.
        const QString text = o->value.toString();
        QByteArray out(text.size(), Qt::Uninitialized);
        for (qsizetype i = 0; i < text.size(); ++i) {
            const char16_t c = text[i].unicode();
            if (c > 0xFF)
                return fail(what + u" holds text, not bytes");
            out[i] = char(c);
        }
        return out;
    }
    return fail(what + u" is not bytes");
}

Result<Obj *> Machine::newObject(Obj *cls, std::vector<Obj *> args, Obj *kwargs)
{
    if (cls->kind != Kind::Global) {
        return fail(QStringLiteral("creates an instance of something that is not a class (%1)")
                        .arg(cls->kind == Kind::Leaf ? cls->value.typeName()
                                                     : QStringLiteral("an object")));
    }
    const QString name = qualified(cls);
    if (name == u"collections.OrderedDict")
        return make(Kind::OrderedDict);
    if (name == u"builtins.dict")
        return make(Kind::Dict);
    if (name == u"collections.defaultdict" || name == u"collections.Counter") {
        Result<Obj *> dict = make(Kind::Dict);
        if (dict) {
            dict.value()->x->warning = name + u" read as a plain dict";
        }
        return dict;
    }
    if (name == u"builtins.list")
        return container(Kind::List, {});
    if (name == u"builtins.set")
        return container(Kind::Set, {});
    if (name == u"builtins.frozenset")
        return container(Kind::FrozenSet,
                         args.empty() || args[0]->kind != Kind::List ? std::vector<Obj *>{}
                                                                     : args[0]->x->items);
    if (name == u"builtins.tuple")
        return container(Kind::Tuple,
                         args.empty() || args[0]->x == nullptr ? std::vector<Obj *>{}
                                                               : args[0]->x->items);
    if (kwargs && !kwargs->x->entries.empty())
        args.push_back(kwargs);
    Result<Obj *> tuple = container(Kind::Tuple, std::move(args));
    if (!tuple)
        return tuple;
    const QString module = cls->x->module;
    QString warning;
    if (!module.startsWith(u"__torch__")) {
        warning = QStringLiteral("%1 kept as an inert object (its code is not run)").arg(name);
    }
    return inert(module, cls->x->name, tuple.value(), warning);
}

// --- REDUCE: the callables torch checkpoints use ------------------------------------------------

Result<Obj *> Machine::reduce(Obj *callable, Obj *argsTuple)
{
    if (argsTuple->kind != Kind::Tuple)
        return fail(QStringLiteral("REDUCE's arguments are not a tuple"));
    if (callable->kind != Kind::Global) {
        return fail(QStringLiteral("calls something that is not a function or class (%1)")
                        .arg(callable->kind == Kind::Leaf ? callable->value.typeName()
                                                          : QStringLiteral("an object")));
    }
    const std::vector<Obj *> &args = argsTuple->x->items;
    const QString module = callable->x->module;
    const QString name = callable->x->name;
    const QString full = module + u'.' + name;
    const auto keepInert = [&](const QString &why) {
        return inert(module, name, argsTuple, why);
    };

    if (module == u"torch._utils") {
        if (name == u"_rebuild_tensor_v2")
            return rebuildTensor(callable, args, true);
        if (name == u"_rebuild_tensor")
            return rebuildTensor(callable, args, false);
        if (name == u"_rebuild_parameter")
            return rebuildParameter(callable, argsTuple, args, false);
        if (name == u"_rebuild_parameter_with_state")
            return rebuildParameter(callable, argsTuple, args, true);
        if (name == u"_rebuild_device_tensor_from_numpy" && args.size() >= 4) {
            // (ndarray, dtype, device, requires_grad)
            Obj *data = args[0];
            if (!isLeaf(data, Value::Kind::Tensor))
                return keepInert(QStringLiteral("a device tensor whose data is not an array"));
            Tensor tensor = data->value.toTensor();
            if (isString(args[2]))
                tensor.storage->device = args[2]->value.toString();
            tensor.requiresGrad = isInt(args[3]) && args[3]->value.toInt() != 0;
            if (Status layout = tensor.checkLayout(); !layout)
                return fail(u"invalid tensor: " + layout.errorMessage());
            return leaf(Value(tensor));
        }
        QString what = name;
        if (name.contains(u"qtensor"))
            what = QStringLiteral("a quantized tensor");
        else if (name.contains(u"sparse"))
            what = QStringLiteral("a sparse tensor");
        else if (name.contains(u"meta"))
            what = QStringLiteral("a meta tensor (no data)");
        else if (name.contains(u"nested"))
            what = QStringLiteral("a nested tensor");
        else if (name.contains(u"xla") || name.contains(u"mlc") || name.contains(u"wrapper"))
            what = QStringLiteral("a tensor of another backend");
        return keepInert(
            QStringLiteral("%1 (%2) is not supported; kept as an inert object").arg(what, full));
    }
    if (module == u"torch._tensor"
        && (name == u"_rebuild_from_type_v2" || name == u"_rebuild_from_type")) {
        // (func, new_type, args, state): a tensor subclass or a tensor with attributes.
        if (args.size() < 3 || args[2]->kind != Kind::Tuple)
            return fail(full + u" needs (func, type, args, state)");
        if (m_reduceDepth >= 8)
            return fail(full + u" nested too deeply");
        ++m_reduceDepth;
        Result<Obj *> tensor = reduce(args[0], args[2]);
        --m_reduceDepth;
        if (!tensor)
            return tensor;
        Obj *type = args[1];
        const bool plain = type->kind == Kind::Global
            && (qualified(type) == u"torch._tensor.Tensor" || qualified(type) == u"torch.Tensor"
                || qualified(type) == u"torch.nn.parameter.Parameter");
        if (!plain && tensor.value()->kind == Kind::Leaf) {
            tensor.value()->extra().warning = QStringLiteral("a tensor of subclass %1 read as a "
                                                             "torch.Tensor")
                                                  .arg(qualified(type));
        } else if (args.size() >= 4 && !isEmptyState(args[3])
                   && tensor.value()->kind == Kind::Leaf) {
            tensor.value()->extra().warning = QStringLiteral("attributes set on the tensor "
                                                             "object ignored");
        }
        return tensor;
    }
    if (full == u"torch.Size") {
        QList<qint64> sizes;
        if (!args.empty()) {
            Obj *list = args[0];
            if (list->kind != Kind::Tuple && list->kind != Kind::List)
                return fail(QStringLiteral("torch.Size needs a tuple of ints"));
            for (Obj *item : list->x->items) {
                if (!isInt(item))
                    return fail(QStringLiteral("torch.Size needs a tuple of ints"));
                sizes.append(item->value.toInt());
            }
        }
        return leaf(Value::size(sizes));
    }
    if (full == u"torch.device") {
        if (args.empty() || !isString(args[0]))
            return fail(QStringLiteral("torch.device needs a str"));
        QString device = args[0]->value.toString();
        if (args.size() >= 2 && isInt(args[1]) && !device.contains(u':'))
            device += u':' + QString::number(args[1]->value.toInt());
        return leaf(Value::device(device));
    }
    if (full == u"collections.defaultdict" || full == u"collections.Counter") {
        // defaultdict(factory) + SETITEMS; Counter(dict).
        Result<Obj *> dict = newObject(callable, {}, nullptr);
        if (dict && full == u"collections.Counter" && !args.empty()
            && args[0]->kind == Kind::Dict) {
            for (const auto &[key, value] : args[0]->x->entries) {
                if (Status status = dictInsert(dict.value(), key, value); !status)
                    return status.error();
            }
        }
        return dict;
    }
    if (full == u"collections.OrderedDict" || full == u"builtins.dict") {
        Result<Obj *> dict = make(full == u"builtins.dict" ? Kind::Dict : Kind::OrderedDict);
        if (!dict)
            return dict;
        if (!args.empty()) {
            Obj *pairs = args[0];
            if (pairs->kind == Kind::Dict || pairs->kind == Kind::OrderedDict) {
                for (const auto &[key, value] : pairs->x->entries) {
                    if (Status status = dictInsert(dict.value(), key, value); !status)
                        return status.error();
                }
            } else if (pairs->kind == Kind::List || pairs->kind == Kind::Tuple) {
                for (Obj *pair : pairs->x->items) {
                    if ((pair->kind != Kind::List && pair->kind != Kind::Tuple)
                        || pair->x->items.size() != 2) {
                        return fail(full + u" needs (key, value) pairs");
                    }
                    if (Status status
                        = dictInsert(dict.value(), pair->x->items[0], pair->x->items[1]);
                        !status) {
                        return status.error();
                    }
                }
            } else {
                return fail(full + u" needs (key, value) pairs");
            }
        }
        return dict;
    }
    if (full == u"builtins.set" || full == u"builtins.frozenset" || full == u"builtins.list"
        || full == u"builtins.tuple") {
        std::vector<Obj *> items;
        if (!args.empty()) {
            Obj *source = args[0];
            if (!source->x
                || (source->kind != Kind::List && source->kind != Kind::Tuple
                    && source->kind != Kind::Set && source->kind != Kind::FrozenSet)) {
                return fail(full + u" needs a list");
            }
            items = source->x->items;
        }
        const Kind kind = full == u"builtins.set" ? Kind::Set
            : full == u"builtins.frozenset"       ? Kind::FrozenSet
            : full == u"builtins.list"            ? Kind::List
                                                  : Kind::Tuple;
        return container(kind, std::move(items));
    }
    if (full == u"builtins.bytearray" || full == u"builtins.bytes") {
        if (args.empty())
            return leaf(Value::bytes(QByteArray()));
        if (isLeaf(args[0], Value::Kind::Bytes))
            return leaf(args[0]->value);
        if (isString(args[0]) && args.size() >= 2 && isString(args[1])) {
            Result<QByteArray> bytes = bytesOf(args[0], full);
            if (!bytes)
                return bytes.error();
            return leaf(Value::bytes(bytes.value()));
        }
        if (args[0]->kind == Kind::List) {
            QByteArray bytes;
            for (Obj *item : args[0]->x->items) {
                if (!isInt(item) || item->value.toInt() < 0 || item->value.toInt() > 255)
                    return fail(full + u" needs ints from 0 to 255");
                bytes.append(char(item->value.toInt()));
            }
            return leaf(Value::bytes(bytes));
        }
        return fail(full + u" needs bytes");
    }
    if (full == u"_codecs.encode") {
        // What Python's protocol 2 writes for bytes: encode(latin-1 str, "latin1").
        if (args.empty() || !isString(args[0]))
            return fail(QStringLiteral("_codecs.encode needs a str"));
        const QString encoding = args.size() >= 2 && isString(args[1])
            ? args[1]->value.toString().toLower().replace(u'_', u'-')
            : QStringLiteral("utf-8");
        if (encoding == u"latin1" || encoding == u"latin-1" || encoding == u"iso-8859-1"
            || encoding == u"l1") {
            Result<QByteArray> bytes = bytesOf(args[0], full);
            if (!bytes)
                return bytes.error();
            return leaf(Value::bytes(bytes.value()));
        }
        if (encoding == u"utf-8" || encoding == u"utf8" || encoding == u"ascii")
            return leaf(Value::bytes(args[0]->value.toString().toUtf8()));
        return keepInert(QStringLiteral("_codecs.encode with encoding %1 kept as an inert object")
                             .arg(encoding));
    }
    if (full == u"builtins.complex" || full == u"builtins.slice" || full == u"builtins.range")
        return keepInert(QString()); // harmless value types, kept as they are
    if (module == u"copyreg") {
        if (name == u"_reconstructor" && !args.empty())
            return newObject(args[0], {}, nullptr);
        if (name == u"__newobj__" && !args.empty())
            return newObject(args[0], std::vector<Obj *>(args.begin() + 1, args.end()), nullptr);
        if (name == u"__newobj_ex__" && args.size() >= 3 && args[1]->kind == Kind::Tuple
            && args[2]->kind == Kind::Dict) {
            return newObject(args[0], args[1]->x->items, args[2]);
        }
    }
    if (module == u"numpy.core.multiarray" && name == u"_reconstruct") {
        Result<Obj *> array = make(Kind::NumpyArray);
        if (array)
            array.value()->x->args = argsTuple;
        return array;
    }
    if (module == u"numpy.core.multiarray" && name == u"scalar")
        return numpyScalar(callable, argsTuple, args);
    if (full == u"numpy.dtype")
        return numpyDType(args);
    if (module == u"numpy.core.numeric" && name == u"_frombuffer" && args.size() >= 4) {
        // (buffer, dtype, shape, order): protocol 5's in-band arrays.
        Result<QByteArray> bytes = bytesOf(args[0], full);
        if (!bytes)
            return bytes.error();
        const bool fortran = isString(args[3]) && args[3]->value.toString() == u"F";
        return numpyArray(args[1], args[2], fortran, bytes.value(), callable, argsTuple);
    }
    if (module == u"torch.jit._pickle") {
        // TorchScript's typed containers: the value itself.
        if (name.startsWith(u"build_") && name != u"build_tensor_from_id" && args.size() == 1)
            return args[0];
        if (name == u"restore_type_tag" && !args.empty())
            return args[0];
    }
    if (full == u"torch.storage._load_from_bytes" && m_options.loadFromBytes && !args.empty()) {
        Result<QByteArray> bytes = bytesOf(args[0], full);
        if (!bytes)
            return bytes.error();
        Result<StorageRef> storage = m_options.loadFromBytes(bytes.value());
        if (!storage)
            return fail(storage.errorMessage());
        Result<Obj *> o = make(Kind::Storage);
        if (o)
            o.value()->x->storage = storage.value();
        return o;
    }
    return keepInert(
        QStringLiteral("a call of %1 kept as an inert object (not executed)").arg(full));
}

Result<Obj *> Machine::rebuildTensor(Obj *callable, const std::vector<Obj *> &args, bool v2)
{
    const QString full = qualified(callable);
    if (args.size() < (v2 ? 6u : 4u))
        return fail(QStringLiteral("%1 needs %2 arguments").arg(full).arg(v2 ? 6 : 4));
    Obj *storage = args[0];
    if (storage->kind != Kind::Storage) {
        Result<Obj *> tuple = container(Kind::Tuple, args);
        if (!tuple)
            return tuple;
        QString why = QStringLiteral("a tensor whose storage could not be read");
        if (storage->kind == Kind::Leaf && storage->value.isObject())
            why = storage->value.objectArgs().at(0).toString();
        return inert(callable->x->module, callable->x->name, tuple.value(),
                     why + QStringLiteral("; kept as an inert object"));
    }
    const auto intList = [&](Obj *o, QList<qint64> *out) {
        if (isLeaf(o, Value::Kind::Size)) {
            *out = o->value.toSize();
            return true;
        }
        if (o->kind != Kind::Tuple && o->kind != Kind::List)
            return false;
        for (Obj *item : o->x->items) {
            if (!isInt(item))
                return false;
            out->append(item->value.toInt());
        }
        return true;
    };
    if (!isInt(args[1]))
        return fail(full + u": the storage offset is not an int");
    Tensor tensor;
    const StorageRef &ref = storage->x->storage;
    tensor.storage = ref.storage;
    const qint64 offset = args[1]->value.toInt();
    if (!intList(args[2], &tensor.shape) || !intList(args[3], &tensor.stride))
        return fail(full + u": the size or stride is not a tuple of ints");
    if (tensor.shape.size() != tensor.stride.size())
        return fail(full + u": the size and the stride have different lengths");
    if (v2 && !isInt(args[4]))
        return fail(full + u": requires_grad is not a bool");
    tensor.requiresGrad = v2 && args[4]->value.toInt() != 0;
    if (offset < 0 || !checkedAdd(offset, ref.offset, &tensor.offset))
        return fail(full + u": invalid storage offset");

    // The view must fit the (possibly viewed) storage, not just the root storage.
    qint64 last = offset;
    qint64 count = 1;
    bool overflow = false;
    for (qsizetype i = 0; i < tensor.shape.size(); ++i) {
        const qint64 size = tensor.shape[i];
        const qint64 step = tensor.stride[i];
        if (size < 0 || step < 0)
            return fail(full + u": negative size or stride");
        qint64 reach = 0;
        overflow = overflow || !checkedMul(count, size, &count)
            || (size > 0 && !checkedMul(size - 1, step, &reach)) || !checkedAdd(last, reach, &last);
    }
    if (overflow)
        return fail(full + u": the shape overflows");
    if (count > 0 && last >= ref.numel) {
        return fail(QStringLiteral("%1: the view needs %2 elements but its storage holds %3")
                        .arg(full)
                        .arg(last + 1)
                        .arg(ref.numel));
    }
    // The storage's bytes may not be there yet (legacy files put them after the pickle): the
    // bounds were checked against the element count above.
    if (tensor.requiresGrad && !isFloatingPoint(ref.storage->dtype)) {
        return fail(QStringLiteral("%1: only floating point and complex tensors can require "
                                   "gradients, not %2")
                        .arg(full, dtypeName(ref.storage->dtype)));
    }

    Result<Obj *> o = leaf(Value(tensor));
    if (!o)
        return o;
    if (v2 && !isEmptyState(args[5]))
        o.value()->extra().warning = QStringLiteral("the tensor's backward hooks were dropped");
    if (v2 && args.size() >= 7 && !isEmptyState(args[6])) {
        o.value()->extra().warning = QStringLiteral("the tensor's metadata (e.g. conjugate or "
                                                    "negative bits) was ignored");
    }
    return o;
}

Result<Obj *> Machine::rebuildParameter(Obj *callable, Obj *argsTuple,
                                        const std::vector<Obj *> &args, bool withState)
{
    const QString full = qualified(callable);
    if (args.size() < (withState ? 4u : 3u))
        return fail(full + u": too few arguments");
    if (!isLeaf(args[0], Value::Kind::Tensor)) {
        return inert(callable->x->module, callable->x->name, argsTuple,
                     QStringLiteral("a parameter whose data is not a tensor; kept as an inert "
                                    "object"));
    }
    if (!isInt(args[1]))
        return fail(full + u": requires_grad is not a bool");
    const Tensor parameter = args[0]->value.toTensor().asParameter(args[1]->value.toInt() != 0);
    if (parameter.requiresGrad && !isFloatingPoint(parameter.dtype())) {
        return fail(QStringLiteral("%1: only floating point and complex tensors can require "
                                   "gradients, not %2")
                        .arg(full, dtypeName(parameter.dtype())));
    }
    Result<Obj *> o = leaf(Value(parameter));
    if (!o)
        return o;
    if (!isEmptyState(args[2]))
        o.value()->extra().warning = QStringLiteral("the parameter's backward hooks were dropped");
    if (withState && !isEmptyState(args[3])) {
        o.value()->extra().warning = QStringLiteral("attributes set on the parameter object "
                                                    "were ignored");
    }
    return o;
}

// --- numpy
// ----------------------------------------------------------------------------------------

std::optional<DType> numpyToDType(char kind, int size)
{
    switch (kind) {
    case 'f':
        return size == 2 ? std::optional(DType::Float16)
            : size == 4  ? std::optional(DType::Float32)
            : size == 8  ? std::optional(DType::Float64)
                         : std::nullopt;
    case 'i':
        return size == 1 ? std::optional(DType::Int8)
            : size == 2  ? std::optional(DType::Int16)
            : size == 4  ? std::optional(DType::Int32)
            : size == 8  ? std::optional(DType::Int64)
                         : std::nullopt;
    case 'u':
        return size == 1 ? std::optional(DType::UInt8) : std::nullopt;
    case 'b':
        return size == 1 ? std::optional(DType::Bool) : std::nullopt;
    case 'c':
        return size == 8 ? std::optional(DType::Complex64)
            : size == 16 ? std::optional(DType::Complex128)
                         : std::nullopt;
    default:
        return std::nullopt;
    }
}

QString numpyName(const Extra &x)
{
    return QString::fromLatin1(QByteArray(1, x.numpyOrder) + QByteArray(1, x.numpyKind))
        + QString::number(x.numpySize);
}

Result<Obj *> Machine::numpyDType(const std::vector<Obj *> &args)
{
    if (args.empty() || !isString(args[0]))
        return fail(QStringLiteral("numpy.dtype needs a str"));
    QString spec = args[0]->value.toString();
    Result<Obj *> o = make(Kind::NumpyDType);
    if (!o)
        return o;
    Extra &x = *o.value()->x;
    if (!spec.isEmpty()
        && (spec[0] == u'<' || spec[0] == u'>' || spec[0] == u'|' || spec[0] == u'=')) {
        x.numpyOrder = spec[0] == u'>' ? '>' : '<';
        spec = spec.mid(1);
    }
    if (spec == u"?")
        spec = QStringLiteral("b1");
    x.module = spec; // shown in messages
    if (spec.isEmpty()) {
        x.numpySupported = false;
        return o;
    }
    x.numpyKind = char(spec[0].toLatin1());
    bool ok = false;
    x.numpySize = spec.mid(1).toInt(&ok);
    if (!ok || x.numpySize <= 0 || x.numpySize > 64)
        x.numpySupported = false;
    return o;
}

/// Little-endian elements from numpy's bytes in the given order.
QByteArray toLittleEndian(QByteArray bytes, char order, DType dtype)
{
    const int size = elementSize(dtype);
    if (order != '>' || size == 1)
        return bytes;
    // Complex numbers swap each of their two parts.
    const int part = (dtype == DType::Complex64 || dtype == DType::Complex128) ? size / 2 : size;
    char *data = bytes.data();
    for (qsizetype i = 0; i + part <= bytes.size(); i += part)
        std::reverse(data + i, data + i + part);
    return bytes;
}

Result<Obj *> Machine::numpyScalar(Obj *callable, Obj *argsTuple, const std::vector<Obj *> &args)
{
    if (args.size() < 2 || args[0]->kind != Kind::NumpyDType)
        return fail(QStringLiteral("numpy scalar needs a dtype and its bytes"));
    const Extra &x = *args[0]->x;
    if (x.numpyKind == 'O')
        return args[1]; // an object scalar holds the object itself
    const std::optional<DType> dtype
        = x.numpySupported ? numpyToDType(x.numpyKind, x.numpySize) : std::nullopt;
    const bool wideUnsigned = x.numpySupported && x.numpyKind == 'u'
        && (x.numpySize == 2 || x.numpySize == 4 || x.numpySize == 8);
    if (!dtype && !wideUnsigned) {
        return inert(callable->x->module, callable->x->name, argsTuple,
                     QStringLiteral("a numpy scalar of dtype %1 is not supported; kept as an "
                                    "inert object")
                         .arg(numpyName(x)));
    }
    Result<QByteArray> raw = bytesOf(args[1], QStringLiteral("the numpy scalar"));
    if (!raw)
        return raw.error();
    if (raw.value().size() != x.numpySize)
        return fail(QStringLiteral("a numpy scalar of %1 bytes holds %2")
                        .arg(x.numpySize)
                        .arg(raw.value().size()));
    QByteArray bytes = raw.value();
    if (x.numpyOrder == '>')
        std::reverse(bytes.begin(), bytes.end());
    const char *p = bytes.constData();
    if (wideUnsigned) {
        quint64 value = x.numpySize == 2 ? qFromLittleEndian<quint16>(p)
            : x.numpySize == 4           ? qFromLittleEndian<quint32>(p)
                                         : qFromLittleEndian<quint64>(p);
        if (value > quint64(std::numeric_limits<qint64>::max())) {
            Result<Obj *> big = make(Kind::BigInt);
            if (big)
                big.value()->x->module = QString::number(value);
            return big;
        }
        return leaf(Value::fromInt(qint64(value)));
    }
    switch (*dtype) {
    case DType::Float16: {
        const qfloat16 half = qFromLittleEndian<qfloat16>(p);
        return leaf(Value(double(float(half))));
    }
    case DType::Float32:
        return leaf(Value(double(qFromLittleEndian<float>(p))));
    case DType::Float64:
        return leaf(Value(qFromLittleEndian<double>(p)));
    case DType::Int8:
        return leaf(Value::fromInt(qint8(p[0])));
    case DType::Int16:
        return leaf(Value::fromInt(qFromLittleEndian<qint16>(p)));
    case DType::Int32:
        return leaf(Value::fromInt(qFromLittleEndian<qint32>(p)));
    case DType::Int64:
        return leaf(Value::fromInt(qFromLittleEndian<qint64>(p)));
    case DType::UInt8:
        return leaf(Value::fromInt(quint8(p[0])));
    case DType::Bool:
        return leaf(Value(p[0] != 0));
    case DType::Complex64:
    case DType::Complex128: {
        // A Python complex, inert as builtins.complex(real, imag).
        const bool wide = *dtype == DType::Complex128;
        const double re = wide ? qFromLittleEndian<double>(p) : qFromLittleEndian<float>(p);
        const double im = wide ? qFromLittleEndian<double>(p + 8) : qFromLittleEndian<float>(p + 4);
        Result<Obj *> real = leaf(Value(re));
        Result<Obj *> imag = real ? leaf(Value(im)) : real;
        if (!imag)
            return imag;
        Result<Obj *> tuple = container(Kind::Tuple, {real.value(), imag.value()});
        if (!tuple)
            return tuple;
        return inert(QStringLiteral("builtins"), QStringLiteral("complex"), tuple.value(),
                     QString());
    }
    case DType::BFloat16:
        break;
    }
    return fail(QStringLiteral("unexpected numpy scalar"));
}

Result<Obj *> Machine::numpyArray(Obj *dtypeObj, Obj *shapeObj, bool fortran,
                                  const QByteArray &bytes, Obj *callable, Obj *argsTuple)
{
    if (dtypeObj->kind != Kind::NumpyDType)
        return fail(QStringLiteral("a numpy array without a dtype"));
    const Extra &x = *dtypeObj->x;
    const std::optional<DType> dtype
        = x.numpySupported ? numpyToDType(x.numpyKind, x.numpySize) : std::nullopt;
    if (!dtype) {
        return inert(callable->x->module, callable->x->name, argsTuple,
                     QStringLiteral("a numpy array of dtype %1 is not supported; kept as an inert "
                                    "object")
                         .arg(numpyName(x)));
    }
    QList<qint64> shape;
    if (shapeObj->kind != Kind::Tuple && shapeObj->kind != Kind::List)
        return fail(QStringLiteral("a numpy array's shape is not a tuple"));
    qint64 count = 1;
    for (Obj *item : shapeObj->x->items) {
        if (!isInt(item) || item->value.toInt() < 0)
            return fail(QStringLiteral("a numpy array's shape is not a tuple of sizes"));
        shape.append(item->value.toInt());
        if (!checkedMul(count, item->value.toInt(), &count))
            return fail(QStringLiteral("a numpy array's shape overflows"));
    }
    qint64 byteCount = 0;
    if (!checkedMul(count, elementSize(*dtype), &byteCount) || byteCount != bytes.size()) {
        return fail(QStringLiteral("a numpy array of %1 elements of %2 holds %3 bytes")
                        .arg(count)
                        .arg(dtypeName(*dtype))
                        .arg(bytes.size()));
    }
    Tensor tensor = Tensor::fromBytes(*dtype, toLittleEndian(bytes, x.numpyOrder, *dtype), shape);
    if (fortran) {
        qint64 step = 1;
        for (qsizetype i = 0; i < shape.size(); ++i) {
            tensor.stride[i] = step;
            step *= std::max<qint64>(shape[i], 1);
        }
    }
    return leaf(Value(tensor));
}

Status Machine::numpyBuild(Obj *array, Obj *state)
{
    // ndarray.__setstate__((version, shape, dtype, is_fortran, data)) or without version.
    if (state->kind != Kind::Tuple)
        return fail(QStringLiteral("a numpy array's state is not a tuple"));
    std::vector<Obj *> items = state->x->items;
    if (items.size() == 5)
        items.erase(items.begin());
    if (items.size() != 4)
        return fail(
            QStringLiteral("a numpy array's state has %1 items").arg(state->x->items.size()));
    Obj *dtype = items[1];
    Result<Obj *> result = Error{};
    if (dtype->kind == Kind::NumpyDType && dtype->x->numpyKind == 'O') {
        result = inert(QStringLiteral("numpy"), QStringLiteral("ndarray"), state,
                       QStringLiteral("a numpy array of Python objects is not supported; kept as "
                                      "an inert object"));
    } else {
        Result<QByteArray> bytes = bytesOf(items[3], QStringLiteral("a numpy array's data"));
        if (!bytes)
            return bytes.error();
        Result<Obj *> reconstruct = global(QStringLiteral("numpy"), QStringLiteral("ndarray"));
        if (!reconstruct)
            return reconstruct.error();
        result = numpyArray(dtype, items[0], isInt(items[2]) && items[2]->value.toInt() != 0,
                            bytes.value(), reconstruct.value(), state);
    }
    if (!result)
        return result.error();
    // Turn the placeholder into the array in place: the memo and the stack hold it.
    Obj *made = result.value();
    array->kind = made->kind;
    array->value = made->value;
    array->conversion = made->conversion;
    array->x = std::move(made->x);
    return success();
}

// --- Conversion to Values
// -------------------------------------------------------------------------

Result<Value> Machine::convert(Obj *o, int depth, const PathLink *path, bool quiet)
{
    if (o->conversion == 2) {
        warnOnce(o, path, quiet);
        return o->value;
    }
    if (o->conversion == 1) {
        warn(path, QStringLiteral("a reference cycle was cut here (None)"), quiet);
        o->expanded = 1;
        return Value();
    }
    if (depth > m_options.maxDepth) {
        return Error{QStringLiteral("%1 nests values more than %2 levels deep (at %3)")
                         .arg(m_options.name)
                         .arg(m_options.maxDepth)
                         .arg(pathText(path).left(60) + u"...")};
    }
    o->conversion = 1;
    Extra &x = *o->x;
    qint64 expanded = 1;
    const auto count = [&](const Obj *child) -> Status {
        expanded += child->expanded;
        if (expanded > m_options.maxExpanded) {
            return Error{QStringLiteral("%1 expands to more than %2 values (repeated "
                                        "references); refused")
                             .arg(m_options.name)
                             .arg(m_options.maxExpanded)};
        }
        return success();
    };
    const auto convertItems = [&](const std::vector<Obj *> &items, QList<Value> *out) -> Status {
        out->reserve(qsizetype(items.size()));
        for (size_t i = 0; i < items.size(); ++i) {
            PathLink link{path, PathLink::Index, nullptr, qsizetype(i)};
            Result<Value> item = convert(items[i], depth + 1, &link, quiet);
            if (!item)
                return item.error();
            if (Status status = count(items[i]); !status)
                return status;
            out->append(std::move(item).value());
        }
        return success();
    };
    const auto convertEntries
        = [&](const std::vector<std::pair<Obj *, Obj *>> &entries, Value::Entries *out,
              bool attributes, bool quietChildren) -> Status {
        out->reserve(qsizetype(entries.size()));
        for (const auto &[keyObj, valueObj] : entries) {
            Result<Value> key = convert(keyObj, depth + 1, path, quietChildren);
            if (!key)
                return key.error();
            PathLink link{
                path, attributes && key.value().isString() ? PathLink::Attribute : PathLink::Key,
                &key.value(), 0};
            Result<Value> value = convert(valueObj, depth + 1, &link, quietChildren);
            if (!value)
                return value.error();
            if (Status status = count(keyObj); !status)
                return status;
            if (Status status = count(valueObj); !status)
                return status;
            out->append({std::move(key).value(), std::move(value).value()});
        }
        return success();
    };

    Value result;
    switch (o->kind) {
    case Kind::Leaf:
        break;
    case Kind::BigInt:
        result = Value::object(QStringLiteral("builtins"), QStringLiteral("int"),
                               Value::tuple({Value(x.module)}));
        warn(path, QStringLiteral("an integer beyond 64 bits (%1) kept as text").arg(x.module),
             quiet);
        break;
    case Kind::Tuple:
    case Kind::List:
    case Kind::Set:
    case Kind::FrozenSet: {
        QList<Value> items;
        if (Status status = convertItems(x.items, &items); !status)
            return status.error();
        if (o->kind == Kind::Tuple) {
            result = Value::tuple(std::move(items));
        } else if (o->kind == Kind::List) {
            result = Value::list(std::move(items));
        } else {
            result = Value::object(QStringLiteral("builtins"),
                                   o->kind == Kind::Set ? QStringLiteral("set")
                                                        : QStringLiteral("frozenset"),
                                   Value::tuple({Value::list(std::move(items))}));
        }
        break;
    }
    case Kind::Dict:
    case Kind::OrderedDict: {
        Value::Entries entries;
        if (Status status = convertEntries(x.entries, &entries, false, quiet); !status)
            return status.error();
        Value state;
        if (x.state) {
            PathLink link{path, PathLink::Attribute, nullptr, 0};
            const Value name(QStringLiteral("__dict__"));
            link.key = &name;
            Result<Value> converted = convert(x.state, depth + 1, &link, quiet);
            if (!converted)
                return converted.error();
            if (Status status = count(x.state); !status)
                return status.error();
            state = std::move(converted).value();
        }
        result = o->kind == Kind::Dict ? Value::dict(std::move(entries))
                                       : Value::orderedDict(std::move(entries), state);
        warnOnce(o, path, quiet);
        break;
    }
    case Kind::Global: {
        result = Value::object(x.module, x.name);
        QString why = x.warning;
        if (why.isEmpty()) {
            why = x.module == u"torch" && !x.name.isEmpty() && x.name[0].isLower()
                ? QStringLiteral("torch.%1 kept by name (not a dtype this reader supports)")
                      .arg(x.name)
                : QStringLiteral("a reference to %1.%2, kept by name").arg(x.module, x.name);
        }
        warn(path, why, quiet);
        break;
    }
    case Kind::Object: {
        const bool script = x.module.startsWith(u"__torch__");
        const QString className = x.module + u'.' + x.name;
        // A torch.nn.Module pickled whole: its state holds _parameters and _modules.
        bool module = false;
        if (x.state && x.state->kind == Kind::Dict) {
            bool parameters = false;
            bool modules = false;
            for (const auto &[key, value] : x.state->x->entries) {
                if (isString(key)) {
                    parameters = parameters || key->value.toString() == u"_parameters";
                    modules = modules || key->value.toString() == u"_modules";
                }
            }
            module = parameters && modules;
        }
        if (module && !m_moduleClasses.contains(className))
            m_moduleClasses.append(className);
        if (script && !m_scriptClasses.contains(className))
            m_scriptClasses.append(className);
        const bool quietInside = quiet || module || script;
        Value args;
        if (x.args) {
            PathLink link{path, PathLink::Attribute, nullptr, 0};
            const Value name(QStringLiteral("__args__"));
            link.key = &name;
            // The object's own warning says enough: what its arguments hold is detail.
            Result<Value> converted
                = convert(x.args, depth + 1, &link, quietInside || !x.warning.isEmpty());
            if (!converted)
                return converted.error();
            if (Status status = count(x.args); !status)
                return status.error();
            args = std::move(converted).value();
        }
        // Items a pickle appended or set on an instance (list and dict subclasses) become the
        // constructor's argument: cls(list) or cls(dict).
        if (!x.items.empty() || !x.entries.empty()) {
            QList<Value> items;
            if (Status status = convertItems(x.items, &items); !status)
                return status.error();
            Value::Entries entries;
            if (Status status = convertEntries(x.entries, &entries, false, quietInside); !status)
                return status.error();
            QList<Value> extended = args.items();
            if (!x.items.empty())
                extended.append(Value::list(std::move(items)));
            if (!x.entries.empty())
                extended.append(Value::dict(std::move(entries)));
            args = Value::tuple(std::move(extended));
        }
        Value state;
        if (x.state) {
            if (x.state->kind == Kind::Dict && x.state->conversion == 0) {
                // Attributes: shown as .name in paths.
                const qint64 before = expanded;
                Value::Entries entries;
                x.state->conversion = 1;
                if (Status status
                    = convertEntries(x.state->x->entries, &entries, true, quietInside);
                    !status) {
                    return status.error();
                }
                x.state->conversion = 2;
                x.state->value = Value::dict(std::move(entries));
                x.state->expanded = 1 + expanded - before;
                expanded += 1;
                state = x.state->value;
            } else {
                PathLink link{path, PathLink::Attribute, nullptr, 0};
                const Value name(QStringLiteral("__state__"));
                link.key = &name;
                Result<Value> converted = convert(x.state, depth + 1, &link, quietInside);
                if (!converted)
                    return converted.error();
                if (Status status = count(x.state); !status)
                    return status.error();
                state = std::move(converted).value();
            }
        }
        result = Value::object(x.module, x.name, args, state);
        if (!module && !script)
            warnOnce(o, path, quiet);
        break;
    }
    case Kind::Storage: {
        const StorageRef &ref = x.storage;
        result = Value(Tensor{ref.storage, ref.offset, {ref.numel}, {1}, false, false});
        warn(path, QStringLiteral("a bare storage read as a 1-D tensor"), quiet);
        break;
    }
    case Kind::NumpyDType:
        result = Value::object(QStringLiteral("numpy"), QStringLiteral("dtype"),
                               Value::tuple({Value(numpyName(x))}));
        break;
    case Kind::NumpyArray:
        result = Value::object(QStringLiteral("numpy"), QStringLiteral("ndarray"));
        warn(path, QStringLiteral("a numpy array without data kept as an inert object"), quiet);
        break;
    }
    o->value = std::move(result);
    o->expanded = expanded;
    o->conversion = 2;
    return o->value;
}

} // namespace

Result<Unpickled> unpickle(const char *data, qint64 size, qint64 start,
                           const UnpickleOptions &options)
{
    Machine machine(data, size, start, options);
    return machine.run();
}

} // namespace ifs::ckpt::detail

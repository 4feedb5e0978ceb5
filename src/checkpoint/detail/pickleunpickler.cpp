#include "checkpoint/detail/picklemachine.h"

#include <QStringDecoder>

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <unordered_set>
#include <vector>

namespace ifs::ckpt::detail {

namespace pickle {

namespace {

/// A Python 2 str literal's text between its quotes, escapes resolved; nullopt for a bad \x.
std::optional<QByteArray> unescapeStringLiteral(const QByteArray &text)
{
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
            return std::nullopt;
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
    return out;
}

/// Python's raw-unicode-escape: \uXXXX and \UXXXXXXXX escapes, every other byte as Latin-1.
QString decodeRawUnicodeEscape(const QByteArray &raw)
{
    QString text;
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
    return text;
}

} // namespace

// --- The opcode table ----------------------------------------------------------------------------

// Every opcode of protocols 0 to 5, with the family that runs it. STOP ends run() itself.
const Machine::Opcode Machine::kOpcodes[] = {
    {'(', "MARK", &Machine::opStack},
    {'.', "STOP", nullptr},
    {'0', "POP", &Machine::opStack},
    {'1', "POP_MARK", &Machine::opStack},
    {'2', "DUP", &Machine::opStack},
    {'F', "FLOAT", &Machine::opTextFloat},
    {'I', "INT", &Machine::opTextInt},
    {'J', "BININT", &Machine::opBinaryNumber},
    {'K', "BININT1", &Machine::opBinaryNumber},
    {'L', "LONG", &Machine::opTextInt},
    {'M', "BININT2", &Machine::opBinaryNumber},
    {'N', "NONE", &Machine::opConstant},
    {'P', "PERSID", &Machine::opPersistentId},
    {'Q', "BINPERSID", &Machine::opPersistentId},
    {'R', "REDUCE", &Machine::opReduce},
    {'S', "STRING", &Machine::opQuotedString},
    {'T', "BINSTRING", &Machine::opCounted},
    {'U', "SHORT_BINSTRING", &Machine::opCounted},
    {'V', "UNICODE", &Machine::opRawUnicode},
    {'X', "BINUNICODE", &Machine::opCounted},
    {'a', "APPEND", &Machine::opAppend},
    {'b', "BUILD", &Machine::opBuild},
    {'c', "GLOBAL", &Machine::opGlobal},
    {'d', "DICT", &Machine::opListDictSet},
    {'}', "EMPTY_DICT", &Machine::opListDictSet},
    {'e', "APPENDS", &Machine::opAppend},
    {'g', "GET", &Machine::opMemoGet},
    {'h', "BINGET", &Machine::opMemoGet},
    {'i', "INST", &Machine::opNewObject},
    {'j', "LONG_BINGET", &Machine::opMemoGet},
    {'l', "LIST", &Machine::opListDictSet},
    {']', "EMPTY_LIST", &Machine::opListDictSet},
    {'o', "OBJ", &Machine::opNewObject},
    {'p', "PUT", &Machine::opMemoPut},
    {'q', "BINPUT", &Machine::opMemoPut},
    {'r', "LONG_BINPUT", &Machine::opMemoPut},
    {'s', "SETITEM", &Machine::opSetItem},
    {'t', "TUPLE", &Machine::opTuple},
    {')', "EMPTY_TUPLE", &Machine::opTuple},
    {'u', "SETITEMS", &Machine::opSetItem},
    {'G', "BINFLOAT", &Machine::opBinaryNumber},
    {0x80, "PROTO", &Machine::opFraming},
    {0x81, "NEWOBJ", &Machine::opNewObject},
    {0x82, "EXT1", &Machine::opUnsupported},
    {0x83, "EXT2", &Machine::opUnsupported},
    {0x84, "EXT4", &Machine::opUnsupported},
    {0x85, "TUPLE1", &Machine::opTuple},
    {0x86, "TUPLE2", &Machine::opTuple},
    {0x87, "TUPLE3", &Machine::opTuple},
    {0x88, "NEWTRUE", &Machine::opConstant},
    {0x89, "NEWFALSE", &Machine::opConstant},
    {0x8a, "LONG1", &Machine::opBinaryNumber},
    {0x8b, "LONG4", &Machine::opBinaryNumber},
    {'B', "BINBYTES", &Machine::opCounted},
    {'C', "SHORT_BINBYTES", &Machine::opCounted},
    {0x8c, "SHORT_BINUNICODE", &Machine::opCounted},
    {0x8d, "BINUNICODE8", &Machine::opCounted},
    {0x8e, "BINBYTES8", &Machine::opCounted},
    {0x8f, "EMPTY_SET", &Machine::opListDictSet},
    {0x90, "ADDITEMS", &Machine::opAppend},
    {0x91, "FROZENSET", &Machine::opListDictSet},
    {0x92, "NEWOBJ_EX", &Machine::opNewObject},
    {0x93, "STACK_GLOBAL", &Machine::opGlobal},
    {0x94, "MEMOIZE", &Machine::opMemoPut},
    {0x95, "FRAME", &Machine::opFraming},
    {0x96, "BYTEARRAY8", &Machine::opCounted},
    {0x97, "NEXT_BUFFER", &Machine::opUnsupported},
    {0x98, "READONLY_BUFFER", &Machine::opReadonlyBuffer},
};

const Machine::Opcode *Machine::findOpcode(quint8 op)
{
    // Indexed once: the loop dispatches millions of opcodes for a large checkpoint.
    static const std::array<const Opcode *, 256> kByCode = [] {
        std::array<const Opcode *, 256> byCode{};
        for (const Opcode &opcode : kOpcodes)
            byCode[opcode.code] = &opcode;
        return byCode;
    }();
    return kByCode[op];
}

QString Machine::opcodeName(quint8 op)
{
    if (const Opcode *opcode = findOpcode(op))
        return QString::fromLatin1(opcode->name);
    return QStringLiteral("unknown opcode 0x%1").arg(op, 2, 16, QLatin1Char('0'));
}

// --- Running -------------------------------------------------------------------------------------

Result<Unpickled> Machine::run()
{
    if (m_pos < 0 || m_pos > m_size)
        return Error{QStringLiteral("%1 lies outside the file").arg(m_options.name)};
    for (;;) {
        m_opStart = m_pos;
        if (!has(1))
            return endsEarly();
        m_op = quint8(m_data[m_pos++]);
        if (m_op == '.')
            return stop();
        const Opcode *opcode = findOpcode(m_op);
        if (!opcode || !opcode->run)
            return fail(QStringLiteral("unknown opcode"));
        if (Status status = (this->*opcode->run)(m_op); !status)
            return status.error();
    }
}

/// STOP: the object on top of the stack is the pickle's value.
Result<Unpickled> Machine::stop()
{
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

Error Machine::endsEarly() const
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

std::optional<QByteArray> Machine::readLine()
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

Result<Obj *> Machine::make(Kind kind)
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

Result<std::vector<Obj *>> Machine::popMark()
{
    if (m_marks.empty())
        return fail(QStringLiteral("no MARK to pop to"));
    const qsizetype mark = m_marks.back();
    m_marks.pop_back();
    std::vector<Obj *> items(m_stack.begin() + mark, m_stack.end());
    m_stack.resize(size_t(mark));
    return items;
}

// --- Opcode families -----------------------------------------------------------------------------

Status Machine::opFraming(quint8 op)
{
    if (op == 0x80) { // PROTO
        if (!has(1))
            return endsEarly();
        m_protocol = quint8(m_data[m_pos++]);
        if (m_protocol > 5)
            return fail(QStringLiteral("pickle protocol %1 is newer than 5").arg(m_protocol));
        return success();
    }
    // FRAME: only a hint for buffering; the length must still fit
    if (!has(8))
        return endsEarly();
    const quint64 length = readLittle<quint64>();
    if (length > quint64(m_size - m_pos))
        return endsEarly();
    return success();
}

Status Machine::opStack(quint8 op)
{
    switch (op) {
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
    default: { // DUP
        Result<Obj *> o = top();
        if (!o)
            return o.error();
        m_stack.push_back(o.value());
        return success();
    }
    }
}

Status Machine::opConstant(quint8 op)
{
    if (op == 'N')
        return push(leaf(Value()));
    return push(leaf(Value(op == 0x88)));
}

Status Machine::opBinaryNumber(quint8 op)
{
    switch (op) {
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
    case 'G': {
        if (!has(8))
            return endsEarly();
        const quint64 bits = qFromBigEndian<quint64>(m_data + m_pos);
        m_pos += 8;
        return push(leaf(Value(std::bit_cast<double>(bits))));
    }
    default: { // LONG1, LONG4: a little-endian two's complement of a counted length
        qint64 length = 0;
        if (op == 0x8a) {
            if (!has(1))
                return endsEarly();
            length = quint8(m_data[m_pos++]);
        } else {
            if (!has(4))
                return endsEarly();
            length = readLittle<qint32>();
            if (length < 0)
                return fail(QStringLiteral("negative length"));
        }
        if (!has(length))
            return endsEarly();
        const char *bytes = m_data + m_pos;
        m_pos += length;
        return push(pushLong(bytes, length));
    }
    }
}

/// INT, LONG: decimal text; INT "01"/"00" are True/False.
Status Machine::opTextInt(quint8 op)
{
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

Status Machine::opTextFloat(quint8)
{
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

Result<qint64> Machine::readCount(quint8 op)
{
    if (op == 0x8c || op == 'U' || op == 'C') {
        if (!has(1))
            return endsEarly();
        return qint64(quint8(m_data[m_pos++]));
    }
    if (op == 'X' || op == 'B' || op == 'T') {
        if (!has(4))
            return endsEarly();
        return op == 'T' ? qint64(readLittle<qint32>()) : qint64(readLittle<quint32>());
    }
    if (!has(8))
        return endsEarly();
    const quint64 wide = readLittle<quint64>();
    if (wide > quint64(std::numeric_limits<qint64>::max()))
        return endsEarly();
    return qint64(wide);
}

/// The counted str, Python 2 str and bytes opcodes.
Status Machine::opCounted(quint8 op)
{
    const Result<qint64> count = readCount(op);
    if (!count)
        return count.error();
    const qint64 length = count.value();
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

/// STRING: a quoted Python 2 str literal.
Status Machine::opQuotedString(quint8)
{
    std::optional<QByteArray> line = readLine();
    if (!line)
        return endsEarly();
    const QByteArray &text = *line;
    if (text.size() < 2 || (text.front() != '\'' && text.front() != '"')
        || text.back() != text.front()) {
        return fail(QStringLiteral("STRING argument is not quoted"));
    }
    const std::optional<QByteArray> unescaped = unescapeStringLiteral(text.mid(1, text.size() - 2));
    if (!unescaped)
        return fail(QStringLiteral("invalid \\x escape in STRING"));
    return push(pyString(*unescaped));
}

/// UNICODE: raw-unicode-escape text.
Status Machine::opRawUnicode(quint8)
{
    std::optional<QByteArray> line = readLine();
    if (!line)
        return endsEarly();
    return push(leaf(Value(decodeRawUnicodeEscape(*line))));
}

Status Machine::opTuple(quint8 op)
{
    if (op == ')')
        return push(container(Kind::Tuple, {}));
    if (op == 't') {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        return push(container(Kind::Tuple, std::move(items).value()));
    }
    // TUPLE1, TUPLE2, TUPLE3
    const size_t count = op - 0x84;
    if (m_stack.size() < size_t(fence()) + count)
        return fail(QStringLiteral("stack underflow"));
    std::vector<Obj *> items(m_stack.end() - count, m_stack.end());
    m_stack.resize(m_stack.size() - count);
    return push(container(Kind::Tuple, std::move(items)));
}

Status Machine::opListDictSet(quint8 op)
{
    switch (op) {
    case ']':
        return push(container(Kind::List, {}));
    case '}':
        return push(make(Kind::Dict));
    case 0x8f:
        return push(container(Kind::Set, {}));
    default:
        break;
    }
    // LIST, DICT, FROZENSET: the items above the MARK
    Result<std::vector<Obj *>> items = popMark();
    if (!items)
        return items.error();
    if (op == 'l')
        return push(container(Kind::List, std::move(items).value()));
    if (op == 0x91)
        return push(container(Kind::FrozenSet, std::move(items).value()));
    Result<Obj *> dict = make(Kind::Dict);
    if (!dict)
        return dict.error();
    if (Status status = setItems(dict.value(), items.value()); !status)
        return status;
    return push(dict);
}

/// APPEND, APPENDS, ADDITEMS
Status Machine::opAppend(quint8 op)
{
    if (op == 'a') {
        Result<Obj *> item = pop();
        if (!item)
            return item.error();
        Result<Obj *> target = top();
        if (!target)
            return target.error();
        return addItems(target.value(), {item.value()});
    }
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

/// SETITEM, SETITEMS
Status Machine::opSetItem(quint8 op)
{
    if (op == 's') {
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
    Result<std::vector<Obj *>> items = popMark();
    if (!items)
        return items.error();
    Result<Obj *> target = top();
    if (!target)
        return target.error();
    return setItems(target.value(), items.value());
}

/// GLOBAL module\nname\n, STACK_GLOBAL: a name only; what it may become is pickleglobals.cpp's.
Status Machine::opGlobal(quint8 op)
{
    if (op == 'c') {
        std::optional<QByteArray> module = readLine();
        std::optional<QByteArray> name = module ? readLine() : std::nullopt;
        if (!name)
            return endsEarly();
        return push(global(QString::fromUtf8(*module), QString::fromUtf8(*name)));
    }
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

Status Machine::opReduce(quint8)
{
    Result<Obj *> args = pop();
    if (!args)
        return args.error();
    Result<Obj *> callable = pop();
    if (!callable)
        return callable.error();
    return push(reduce(callable.value(), args.value()));
}

/// NEWOBJ cls args, NEWOBJ_EX cls args kwargs, INST module\nname\n with MARK args, OBJ: MARK
/// cls args...
Status Machine::opNewObject(quint8 op)
{
    if (op == 'o') {
        Result<std::vector<Obj *>> items = popMark();
        if (!items)
            return items.error();
        if (items.value().empty())
            return fail(QStringLiteral("OBJ without a class"));
        Obj *cls = items.value().front();
        std::vector<Obj *> args(items.value().begin() + 1, items.value().end());
        return push(newObject(cls, std::move(args), nullptr));
    }
    if (op == 'i') {
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
    Result<Obj *> kwargs = op == 0x92 ? pop() : Result<Obj *>(nullptr);
    if (!kwargs)
        return kwargs.error();
    Result<Obj *> args = pop();
    if (!args)
        return args.error();
    Result<Obj *> cls = pop();
    if (!cls)
        return cls.error();
    if (op == 0x81 && args.value()->kind != Kind::Tuple)
        return fail(QStringLiteral("NEWOBJ's arguments are not a tuple"));
    if (op == 0x92 && (args.value()->kind != Kind::Tuple || kwargs.value()->kind != Kind::Dict))
        return fail(QStringLiteral("NEWOBJ_EX needs a tuple and a dict"));
    return push(newObject(cls.value(), args.value()->x->items, kwargs.value()));
}

Status Machine::opBuild(quint8)
{
    Result<Obj *> state = pop();
    if (!state)
        return state.error();
    Result<Obj *> target = top();
    if (!target)
        return target.error();
    return build(target.value(), state.value());
}

/// PERSID (a text id), BINPERSID (any object): a tensor storage, as the options load it.
Status Machine::opPersistentId(quint8 op)
{
    if (op == 'P') {
        std::optional<QByteArray> line = readLine();
        if (!line)
            return endsEarly();
        Result<Obj *> pid = leaf(Value(QString::fromUtf8(*line)));
        if (!pid)
            return pid.error();
        return push(persistentLoad(pid.value()));
    }
    Result<Obj *> pid = pop();
    if (!pid)
        return pid.error();
    return push(persistentLoad(pid.value()));
}

Status Machine::opMemoPut(quint8 op)
{
    switch (op) {
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
    default: // MEMOIZE
        return memoPut(quint64(m_memo.size()));
    }
}

Status Machine::opMemoGet(quint8 op)
{
    switch (op) {
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
    default: // LONG_BINGET
        if (!has(4))
            return endsEarly();
        return memoGet(readLittle<quint32>());
    }
}

Status Machine::opUnsupported(quint8 op)
{
    if (op == 0x97) {
        return fail(QStringLiteral("out-of-band buffers (protocol 5 with a buffer_callback) "
                                   "cannot be read from a file"));
    }
    return fail(QStringLiteral("the copyreg extension registry is not supported"));
}

/// READONLY_BUFFER: a flag on the buffer on top; nothing to do for bytes.
Status Machine::opReadonlyBuffer(quint8)
{
    return top() ? success() : fail(QStringLiteral("stack underflow"));
}

// --- The stack's objects -------------------------------------------------------------------------

bool isEmptyState(const Obj *o)
{
    // Without recursion and without revisiting: a list may contain itself (DUP, APPEND) or nest
    // deeper than any stack, and BUILD asks this of whatever state a hostile pickle gives it. A
    // container met again adds nothing new, so a cycle of empty containers carries nothing.
    std::vector<const Obj *> pending{o};
    std::unordered_set<const Obj *> seen;
    while (!pending.empty()) {
        const Obj *next = pending.back();
        pending.pop_back();
        if (!next)
            continue;
        switch (next->kind) {
        case Kind::Leaf:
            if (!next->value.isNone())
                return false;
            break;
        case Kind::Tuple:
        case Kind::List:
            if (seen.insert(next).second)
                pending.insert(pending.end(), next->x->items.begin(), next->x->items.end());
            break;
        case Kind::Dict:
        case Kind::OrderedDict:
            if (!next->x->entries.empty())
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
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

/// Every entry of the dict `from`, inserted in order.
Status Machine::dictInsertAll(Obj *dict, const Obj *from)
{
    // A copy to iterate: `from` may be `dict` itself (BUILD with an object's own state dict,
    // Counter(d) of a dict that holds itself), and inserting may grow the very vector a range-for
    // over it would read from freed memory.
    const std::vector<std::pair<Obj *, Obj *>> entries = from->x->entries;
    for (const auto &[key, value] : entries) {
        if (Status status = dictInsert(dict, key, value); !status)
            return status;
    }
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
                if (Status status = dictInsertAll(x.state, part); !status)
                    return status;
            } else if (!isEmptyState(part) || !x.state) {
                if (part->kind == Kind::Dict && x.state == nullptr) {
                    // A copy: the same state dict may be shared (memo) with other objects.
                    Result<Obj *> copy = make(Kind::Dict);
                    if (!copy)
                        return copy.error();
                    if (Status status = dictInsertAll(copy.value(), part); !status)
                        return status;
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

} // namespace pickle

Result<Unpickled> unpickle(const char *data, qint64 size, qint64 start,
                           const UnpickleOptions &options)
{
    pickle::Machine machine(data, size, start, options);
    return machine.run();
}

} // namespace ifs::ckpt::detail

#include "checkpoint/checkpointrepair.h"

#include "checkpoint/checkpointwalk.h"
#include "checkpoint/checkpointwriter.h"
#include "checkpoint/dtypecodec.h"

#include <QHash>
#include <QLocale>
#include <QRegularExpression>
#include <QSet>
#include <QtEndian>

#include <algorithm>
#include <bit>
#include <cmath>
#include <complex>
#include <functional>
#include <limits>
#include <optional>

using namespace Qt::StringLiterals;

namespace ifs::ckpt {

namespace {

// Deeper trees are a bug in the caller (or a hostile file), not a checkpoint.
constexpr int kMaxDepth = 1000;
// How many keys a message lists before "and N more".
constexpr int kListLimit = 3;
// Proposal search bounds: rounds of prefix operations, candidates evaluated per round.
constexpr int kMaxPrefixRounds = 8;
constexpr int kMaxCandidates = 64;

// ---- Text helpers

QString quoted(const QString &text)
{
    return u"“"_s + text + u"”"_s;
}

QString number(qint64 n)
{
    return QLocale(QLocale::English, QLocale::UnitedStates).toString(n);
}

QString counted(qint64 n, const QString &singular, const QString &plural)
{
    return number(n) + u' ' + (n == 1 ? singular : plural);
}

QString keysCount(qint64 n)
{
    return counted(n, u"key"_s, u"keys"_s);
}

/// "a, b and c", "a, b, c and 4 more".
QString listText(const QStringList &items, int limit = kListLimit)
{
    if (items.isEmpty())
        return QString();
    if (items.size() == 1)
        return items.first();
    if (items.size() <= limit)
        return items.mid(0, items.size() - 1).join(u", "_s) + u" and "_s + items.last();
    return items.mid(0, limit).join(u", "_s) + u" and "_s + number(items.size() - limit)
        + u" more"_s;
}

QString quotedList(const QStringList &items, int limit = kListLimit)
{
    QStringList q;
    for (qsizetype i = 0; i < items.size() && i <= limit; ++i)
        q.append(quoted(items[i]));
    // listText() counts the rest from the size: pad with placeholders it never shows.
    while (q.size() < items.size())
        q.append(QString());
    return listText(q, limit);
}

/// A dict key as Python writes it where it is not a str (str keys as they are).
QString keyText(const Value &key)
{
    switch (key.kind()) {
    case Value::Kind::String:
        return key.toString();
    case Value::Kind::Int:
        return QString::number(key.toInt());
    case Value::Kind::Bool:
        return key.toBool() ? u"True"_s : u"False"_s;
    case Value::Kind::None:
        return u"None"_s;
    case Value::Kind::Float:
        return QString::number(key.toDouble(), 'g', 17);
    default:
        return u"<"_s + key.typeName() + u">"_s;
    }
}

QStringList keysOf(const Value &value)
{
    QStringList keys;
    if (value.isDict()) {
        keys.reserve(value.size());
        for (const Value::Entry &entry : value.entries())
            keys.append(keyText(entry.first));
    }
    return keys;
}

QString shapeText(const QList<qint64> &shape)
{
    QStringList parts;
    for (const qint64 s : shape)
        parts.append(QString::number(s));
    return u"["_s + parts.join(u", "_s) + u"]"_s;
}

qint64 elementsOf(const QList<qint64> &shape)
{
    qint64 n = 1;
    for (const qint64 s : shape) {
        if (s <= 0)
            return 0;
        n *= s;
    }
    return n;
}

QString dataSize(qint64 bytes)
{
    return QLocale(QLocale::English, QLocale::UnitedStates)
        .formattedDataSize(bytes, 1, QLocale::DataSizeSIFormat);
}

/// "an int", "a list", for messages.
QString aTypeName(const Value &value)
{
    const QString name = value.typeName();
    static const QString vowels = u"aeiouAEIOU"_s;
    return (vowels.contains(name.at(0)) ? u"an "_s : u"a "_s) + name;
}

/// torch's location strings: "cpu", "cuda", "cuda:0", "privateuseone:1" (as the writer checks).

bool isRealFloat(DType dtype)
{
    return dtype == DType::Float32 || dtype == DType::Float64 || dtype == DType::Float16
        || dtype == DType::BFloat16;
}

// ---- fnmatch

/// Python's fnmatch.translate() for one pattern, as a QRegularExpression that must match a
/// whole key. Set members become \x{...} escapes so that nothing in them is special to PCRE.
QRegularExpression fnmatchRegex(const QString &pattern)
{
    const auto hex = [](QChar c) -> QString {
        return u"\\x{"_s + QString::number(c.unicode(), 16) + u"}"_s;
    };
    QString re;
    const qsizetype n = pattern.size();
    qsizetype i = 0;
    bool lastStar = false;
    while (i < n) {
        const QChar c = pattern[i++];
        if (c == u'*') {
            if (!lastStar)
                re += u".*"_s;
            lastStar = true;
            continue;
        }
        lastStar = false;
        if (c == u'?') {
            re += u'.';
        } else if (c == u'[') {
            qsizetype j = i;
            if (j < n && pattern[j] == u'!')
                ++j;
            if (j < n && pattern[j] == u']')
                ++j;
            while (j < n && pattern[j] != u']')
                ++j;
            if (j >= n) {
                re += u"\\["_s;
                continue;
            }
            // Chunks between range hyphens, as Python splits them.
            QStringList chunks;
            const QString stuff = pattern.mid(i, j - i);
            if (!stuff.contains(u'-')) {
                chunks.append(stuff);
            } else {
                qsizetype start = i;
                qsizetype k = pattern[i] == u'!' ? i + 2 : i + 1;
                while (true) {
                    k = k < j ? pattern.indexOf(u'-', k) : -1;
                    if (k < 0 || k >= j)
                        break;
                    chunks.append(pattern.mid(start, k - start));
                    start = k + 1;
                    k = k + 3;
                }
                const QString last = pattern.mid(start, j - start);
                if (!last.isEmpty())
                    chunks.append(last);
                else
                    chunks.last() += u'-';
                // Ranges whose end is below their start are empty: Python removes them.
                for (qsizetype m = chunks.size() - 1; m > 0; --m) {
                    if (chunks[m - 1].isEmpty() || chunks[m].isEmpty())
                        continue;
                    if (chunks[m - 1].back() > chunks[m].front()) {
                        chunks[m - 1] = chunks[m - 1].chopped(1) + chunks[m].mid(1);
                        chunks.removeAt(m);
                    }
                }
            }
            i = j + 1;
            bool negate = false;
            if (!chunks.isEmpty() && chunks.first().startsWith(u'!')) {
                negate = true;
                chunks.first().remove(0, 1);
            }
            QString set;
            for (qsizetype m = 0; m < chunks.size(); ++m) {
                if (m > 0)
                    set += u'-';
                for (const QChar member : std::as_const(chunks[m]))
                    set += hex(member);
            }
            if (set.isEmpty())
                re += negate ? u"."_s : u"(?!)"_s;
            else
                re += (negate ? u"[^"_s : u"["_s) + set + u"]"_s;
        } else {
            re += QRegularExpression::escape(QString(c));
        }
    }
    return QRegularExpression(QRegularExpression::anchoredPattern(re),
                              QRegularExpression::DotMatchesEverythingOption);
}

/// A key as an fnmatch pattern that matches only it.
QString globEscape(const QString &text)
{
    QString out;
    for (const QChar c : text) {
        if (c == u'*' || c == u'?' || c == u'[')
            out += u'[' + QString(c) + u']';
        else
            out += c;
    }
    return out;
}

// ---- re.sub replacement templates

struct TemplatePart
{
    QString literal;
    int group = -1; ///< ≥ 0: the text of this group instead of `literal`
};

/// Parses a replacement as Python's re.sub does: \1..\99, \g<n>, \g<name>, \\, \n, \t.
Result<QList<TemplatePart>> parseReplacement(const QString &text, const QRegularExpression &re)
{
    QList<TemplatePart> parts;
    QString literal;
    const auto flush = [&] {
        if (!literal.isEmpty())
            parts.append({literal, -1});
        literal.clear();
    };
    const auto groupPart = [&](int group) -> Status {
        if (group > re.captureCount()) {
            return Error{u"The replacement refers to group %1, but the pattern has %2. Use \\1 "
                         u"to \\%2 or add groups to the pattern."_s.arg(group)
                             .arg(re.captureCount())};
        }
        flush();
        parts.append({QString(), group});
        return success();
    };
    for (qsizetype i = 0; i < text.size(); ++i) {
        const QChar c = text[i];
        if (c != u'\\') {
            literal += c;
            continue;
        }
        if (i + 1 >= text.size())
            return Error{u"The replacement ends with a lone backslash; write \\\\ for one."_s};
        const QChar next = text[++i];
        if (next.isDigit() && next != u'0') {
            int group = next.digitValue();
            if (i + 1 < text.size() && text[i + 1].isDigit()) {
                group = group * 10 + text[i + 1].digitValue();
                ++i;
            }
            if (Status s = groupPart(group); !s)
                return s.error();
        } else if (next == u'g') {
            const qsizetype close = text.indexOf(u'>', i);
            if (i + 1 >= text.size() || text[i + 1] != u'<' || close < 0)
                return Error{u"The replacement has \\g without <group>; write \\g<1> or "
                             u"\\g<name>."_s};
            const QString name = text.mid(i + 2, close - i - 2);
            bool isNumber = false;
            int group = name.toInt(&isNumber);
            if (!isNumber) {
                group = int(re.namedCaptureGroups().indexOf(name));
                if (group <= 0) {
                    return Error{u"The replacement refers to the group %1, which the pattern "
                                 u"does not name."_s.arg(quoted(name))};
                }
            }
            if (group < 0)
                return Error{u"The replacement refers to a negative group %1."_s.arg(name)};
            if (Status s = groupPart(group); !s)
                return s.error();
            i = close;
        } else if (next == u'\\') {
            literal += u'\\';
        } else if (next == u'n') {
            literal += u'\n';
        } else if (next == u't') {
            literal += u'\t';
        } else if (next.isLetter() || next == u'0') {
            return Error{u"The replacement has the unknown escape \\%1; use \\1 for a group "
                         u"and \\\\ for a backslash."_s.arg(next)};
        } else {
            // Python keeps other escapes as they are.
            literal += u'\\';
            literal += next;
        }
    }
    flush();
    return parts;
}

QString substitute(const QString &key, const QRegularExpression &re,
                   const QList<TemplatePart> &parts)
{
    QRegularExpressionMatchIterator it = re.globalMatch(key);
    if (!it.hasNext())
        return key;
    QString out;
    qsizetype last = 0;
    while (it.hasNext()) {
        const QRegularExpressionMatch match = it.next();
        out += QStringView(key).mid(last, match.capturedStart() - last);
        for (const TemplatePart &part : parts)
            out += part.group >= 0 ? match.captured(part.group) : part.literal;
        last = match.capturedEnd();
    }
    out += QStringView(key).mid(last);
    return out;
}

// ---- Floating point conversions (dtypecodec.h: as torch 1.13's CPU kernels)

/// Converts every element of a storage (its data at `data`).
QByteArray convertElements(const Storage &storage, const char *data, DType to)
{
    const DType from = storage.dtype;
    const qint64 n = storage.numel();
    QByteArray out(n * elementSize(to), Qt::Uninitialized);
    const uchar *src = reinterpret_cast<const uchar *>(data);
    uchar *dst = reinterpret_cast<uchar *>(out.data());
    const quint16 bfloat16Nan = from == DType::Float16 ? 0x7FC0u : 0xFFFFu;
    for (qint64 i = 0; i < n; ++i) {
        // A double from float64, the float32 bits from the other three.
        double d = 0.0;
        quint32 f = 0;
        switch (from) {
        case DType::Float64:
            d = std::bit_cast<double>(qFromLittleEndian<quint64>(src + 8 * i));
            f = std::bit_cast<quint32>(static_cast<float>(d));
            break;
        case DType::Float32:
            f = qFromLittleEndian<quint32>(src + 4 * i);
            break;
        case DType::Float16:
            f = floatBitsFromHalf(qFromLittleEndian<quint16>(src + 2 * i));
            break;
        case DType::BFloat16:
            f = floatBitsFromBFloat16(qFromLittleEndian<quint16>(src + 2 * i));
            break;
        default:
            break;
        }
        switch (to) {
        case DType::Float64:
            qToLittleEndian<quint64>(
                std::bit_cast<quint64>(static_cast<double>(std::bit_cast<float>(f))), dst + 8 * i);
            break;
        case DType::Float32:
            qToLittleEndian<quint32>(f, dst + 4 * i);
            break;
        case DType::Float16:
            qToLittleEndian<quint16>(halfFromFloatBits(f), dst + 2 * i);
            break;
        case DType::BFloat16:
            qToLittleEndian<quint16>(bfloat16FromFloatBits(f, bfloat16Nan), dst + 2 * i);
            break;
        default:
            break;
        }
    }
    return out;
}

// ---- Walking values

/// Python's numbers of one element, for the diff: real and imaginary parts.
using Number = std::complex<long double>;

Number elementAt(const uchar *p, DType dtype, qint64 i)
{
    switch (dtype) {
    case DType::Float32:
        return std::bit_cast<float>(qFromLittleEndian<quint32>(p + 4 * i));
    case DType::Float64:
        return std::bit_cast<double>(qFromLittleEndian<quint64>(p + 8 * i));
    case DType::Float16:
        return std::bit_cast<float>(floatBitsFromHalf(qFromLittleEndian<quint16>(p + 2 * i)));
    case DType::BFloat16:
        return std::bit_cast<float>(floatBitsFromBFloat16(qFromLittleEndian<quint16>(p + 2 * i)));
    case DType::Int8:
        return qint8(p[i]);
    case DType::Int16:
        return qFromLittleEndian<qint16>(p + 2 * i);
    case DType::Int32:
        return qFromLittleEndian<qint32>(p + 4 * i);
    case DType::Int64:
        return (long double)qFromLittleEndian<qint64>(p + 8 * i);
    case DType::UInt8:
        return p[i];
    case DType::Bool:
        return p[i] ? 1 : 0;
    case DType::Complex64:
        return {std::bit_cast<float>(qFromLittleEndian<quint32>(p + 8 * i)),
                std::bit_cast<float>(qFromLittleEndian<quint32>(p + 8 * i + 4))};
    case DType::Complex128:
        return {std::bit_cast<double>(qFromLittleEndian<quint64>(p + 16 * i)),
                std::bit_cast<double>(qFromLittleEndian<quint64>(p + 16 * i + 8))};
    }
    return 0;
}

/// Calls `fn` on every tensor in `value`; rebuilds the containers whose tensors `fn` replaced
/// (a tensor counts as replaced when its storage pointer changes). Returns nullopt for "nothing
/// changed" so that untouched subtrees stay shared.
class TensorMapper
{
public:
    using Fn = std::function<Tensor(const Tensor &)>;
    explicit TensorMapper(Fn fn)
        : m_fn(std::move(fn))
    { }

    Result<Value> run(const Value &value)
    {
        std::optional<Value> mapped = map(value, 0);
        if (m_tooDeep)
            return Error{u"The value is nested deeper than %1 levels."_s.arg(kMaxDepth)};
        return mapped ? *mapped : value;
    }

private:
    std::optional<Value> map(const Value &value, int depth)
    {
        if (depth > kMaxDepth) {
            m_tooDeep = true;
            return std::nullopt;
        }
        switch (value.kind()) {
        case Value::Kind::Tensor: {
            const Tensor tensor = value.toTensor();
            Tensor result = m_fn(tensor);
            if (result.storage == tensor.storage)
                return std::nullopt;
            return Value(result);
        }
        case Value::Kind::Tuple:
        case Value::Kind::List: {
            QList<Value> items = value.items();
            bool changed = false;
            for (Value &item : items) {
                if (std::optional<Value> m = map(item, depth + 1)) {
                    item = *m;
                    changed = true;
                }
            }
            if (!changed)
                return std::nullopt;
            return value.isTuple() ? Value::tuple(items) : Value::list(items);
        }
        case Value::Kind::Dict:
        case Value::Kind::OrderedDict: {
            Value::Entries entries = value.entries();
            bool changed = false;
            for (Value::Entry &entry : entries) {
                if (std::optional<Value> m = map(entry.second, depth + 1)) {
                    entry.second = *m;
                    changed = true;
                }
            }
            if (!changed)
                return std::nullopt;
            return value.isOrderedDict() ? Value::orderedDict(entries, value.state())
                                         : Value::dict(entries);
        }
        case Value::Kind::Object: {
            std::optional<Value> args = map(value.objectArgs(), depth + 1);
            std::optional<Value> state = map(value.state(), depth + 1);
            if (!args && !state)
                return std::nullopt;
            return Value::object(value.objectModule(), value.objectName(),
                                 args ? *args : value.objectArgs(), state ? *state : value.state());
        }
        default:
            return std::nullopt;
        }
    }

    Fn m_fn;
    bool m_tooDeep = false;
};

/// Visits the tensors that TensorMapper maps (an OrderedDict's attributes are not mapped), for
/// counting in dry runs.
void forEachMappedTensor(const Value &value, const std::function<void(const Tensor &)> &fn)
{
    walkValues(value, [&](WalkPath path, const Value &v) {
        if (path.size() > size_t(kMaxDepth)
            || (!path.empty() && path.back().kind == WalkStep::Kind::DictState)) {
            return WalkAction::SkipChildren;
        }
        if (v.isTensor())
            fn(v.toTensor());
        return WalkAction::Continue;
    });
}

Value withEntries(const Value &dict, const Value::Entries &entries, const Value &state)
{
    return dict.isOrderedDict() ? Value::orderedDict(entries, state) : Value::dict(entries);
}

Value replaceAt(const Value &node, const KeyPath &path, qsizetype index, const Value &value)
{
    if (index == path.size())
        return value;
    Value copy = node;
    const Value *child = node.find(path[index]);
    copy.insert(Value(path[index]), replaceAt(child ? *child : Value(), path, index + 1, value));
    return copy;
}

// ---- _metadata

/// What a key operation does to the module names of `_metadata`.
enum class MetadataRule {
    Keep, ///< keys dropped or unchanged: the modules are still there
    Follow, ///< prefixes: the module names change as the keys do
    DropIfRenamed, ///< arbitrary renames: the module names cannot be derived
};

/// A module prefix ("layer1.0." or "" for the root) → its new prefix, nullopt when unaffected.
using PrefixMap = std::function<std::optional<QString>(const QString &)>;

/// `_metadata` with its module names mapped. An entry the map does not touch is dropped where a
/// mapped one takes its name (DataParallel's own "" entry once "module" becomes ""), and a
/// mapped name that is no module name (a prefix without a trailing dot) is dropped.
Value followMetadata(const Value &metadata, const PrefixMap &map, int &renamed,
                     QStringList &dropped)
{
    struct Item
    {
        Value key;
        Value value;
        bool mapped;
    };
    QList<Item> items;
    QSet<QString> mappedNames;
    for (const Value::Entry &entry : metadata.entries()) {
        if (!entry.first.isString()) {
            items.append({entry.first, entry.second, false});
            continue;
        }
        const QString name = entry.first.toString();
        const std::optional<QString> prefix = map(name.isEmpty() ? name : name + u'.');
        if (!prefix) {
            items.append({entry.first, entry.second, false});
            continue;
        }
        QString newName;
        if (prefix->isEmpty()) {
            newName = QString();
        } else if (prefix->endsWith(u'.')) {
            newName = prefix->chopped(1);
        } else {
            dropped.append(name);
            continue;
        }
        if (mappedNames.contains(newName)) {
            dropped.append(name);
            continue;
        }
        mappedNames.insert(newName);
        if (newName != name)
            ++renamed;
        items.append({Value(newName), entry.second, true});
    }
    Value::Entries entries;
    for (const Item &item : std::as_const(items)) {
        if (!item.mapped && item.key.isString() && mappedNames.contains(item.key.toString())) {
            dropped.append(item.key.toString());
            continue;
        }
        entries.append({item.key, item.value});
    }
    return metadata.isOrderedDict() ? Value::orderedDict(entries, metadata.state())
                                    : Value::dict(entries);
}

/// The new BUILD state of a dict whose keys changed.
Value newState(const Value &dict, MetadataRule rule, const PrefixMap &map, bool anyRenamed,
               QStringList &notes)
{
    const Value state = dict.state();
    const Value *metadata = state.isDict() ? state.find(u"_metadata") : nullptr;
    if (!metadata || !metadata->isDict() || rule == MetadataRule::Keep)
        return state;
    if (rule == MetadataRule::Follow) {
        int renamed = 0;
        QStringList dropped;
        const Value followed = followMetadata(*metadata, map, renamed, dropped);
        if (renamed > 0 || !dropped.isEmpty()) {
            QString note = u"_metadata: %1 renamed to follow the keys"_s.arg(
                counted(renamed, u"module name"_s, u"module names"_s));
            if (!dropped.isEmpty()) {
                note += u"; dropped the entries of %1 (no longer modules of the state dict)"_s.arg(
                    quotedList(dropped));
            }
            notes.append(note);
        }
        Value updated = state;
        updated.insert(Value(u"_metadata"_s), followed);
        return updated;
    }
    if (!anyRenamed)
        return state;
    notes.append(u"_metadata dropped: its module names cannot be derived from renamed keys. "
                 u"load_state_dict then treats every module as version 1, which only matters "
                 u"for keys the checkpoint lacks (BatchNorm adds num_batches_tracked)."_s);
    Value::Entries rest;
    for (const Value::Entry &entry : state.entries()) {
        if (!(entry.first.isString() && entry.first.toString() == u"_metadata"_s))
            rest.append(entry);
    }
    return rest.isEmpty() ? Value() : Value::dict(rest);
}

// ---- Key operations

/// The keys with `prefix` that must keep it because their stripped names are taken (by a key
/// without the prefix, or by a key that keeps it). Computed to a fixed point; order-independent.
QSet<QString> clashingKeys(const QStringList &keys, const QString &prefix)
{
    QSet<QString> kept;
    while (true) {
        QHash<QString, QStringList> owners;
        owners.reserve(keys.size());
        for (const QString &key : keys) {
            const bool strip = key.startsWith(prefix) && !kept.contains(key);
            owners[strip ? key.mid(prefix.size()) : key].append(key);
        }
        bool changed = false;
        for (auto it = owners.cbegin(); it != owners.cend(); ++it) {
            if (it.value().size() < 2)
                continue;
            for (const QString &key : it.value()) {
                if (key.startsWith(prefix) && !kept.contains(key)) {
                    kept.insert(key);
                    changed = true;
                }
            }
        }
        if (!changed)
            return kept;
    }
}

QStringList strKeys(const Value &dict)
{
    QStringList keys;
    for (const Value::Entry &entry : dict.entries()) {
        if (entry.first.isString())
            keys.append(entry.first.toString());
    }
    return keys;
}

/// A new name for a str key; nullopt drops the entry.
using KeyMap = std::function<std::optional<QString>(const QString &)>;

/// Renames and drops the str keys of `dict`. Fails when two keys would become one.
Result<Value> mapKeys(const Value &dict, const KeyMap &map, const QString &action,
                      const QString &hint, MetadataRule rule, const PrefixMap &prefixMap,
                      OperationReport &report)
{
    Value::Entries entries;
    entries.reserve(dict.size());
    QHash<QString, QString> owner; // new key → the old key that took it
    owner.reserve(dict.size());
    for (const Value::Entry &entry : dict.entries()) {
        if (!entry.first.isString()) {
            entries.append(entry);
            continue;
        }
        const QString key = entry.first.toString();
        const std::optional<QString> newKey = map(key);
        if (!newKey) {
            report.dropped.append(key);
            continue;
        }
        const auto taken = owner.constFind(*newKey);
        if (taken != owner.cend()) {
            return Error{u"Cannot %1: %2 and %3 would both become %4, and one of them would be "
                         u"lost. %5"_s.arg(action, quoted(taken.value()), quoted(key),
                                           quoted(*newKey), hint)};
        }
        owner.insert(*newKey, key);
        if (*newKey != key) {
            report.renamed.append({key, *newKey});
            entries.append({Value(*newKey), entry.second});
        } else {
            entries.append(entry);
        }
    }
    report.changed = int(report.renamed.size() + report.dropped.size());
    const Value state = dict.isOrderedDict()
        ? newState(dict, rule, prefixMap, !report.renamed.isEmpty(), report.notes)
        : Value();
    return withEntries(dict, entries, state);
}

int strKeyCount(const Value &dict)
{
    int n = 0;
    for (const Value::Entry &entry : dict.entries())
        n += entry.first.isString() ? 1 : 0;
    return n;
}

/// Applies one operation; fills `report`. A dry run does not convert or retag tensors.
class Repairer
{
public:
    explicit Repairer(bool dryRun)
        : m_dryRun(dryRun)
    { }

    Result<Value> apply(const Value &value, const Operation &op, OperationReport &report)
    {
        return std::visit([&](const auto &o) { return run(value, o, report); }, op);
    }

private:
    static Status needDict(const Value &value, const QString &what)
    {
        if (value.isDict())
            return success();
        return Error{u"Cannot %1: the value is %2, not a dict of tensors. Extract the state dict "
                     u"first."_s.arg(what, aTypeName(value))};
    }

    Result<Value> run(const Value &value, const StripPrefix &op, OperationReport &report)
    {
        const QString action = u"strip the prefix %1"_s.arg(quoted(op.prefix));
        if (op.prefix.isEmpty())
            return Error{u"Cannot strip an empty prefix; give the prefix, e.g. “module.”."_s};
        if (Status s = needDict(value, action); !s)
            return s.error();
        const QString prefix = op.prefix;
        const QSet<QString> kept
            = op.keepClashing ? clashingKeys(strKeys(value), prefix) : QSet<QString>();
        const auto strip = [prefix, &kept](const QString &key) -> std::optional<QString> {
            return key.startsWith(prefix) && !kept.contains(key) ? key.mid(prefix.size()) : key;
        };
        const auto prefixMap = [prefix](const QString &module) -> std::optional<QString> {
            if (!module.startsWith(prefix))
                return std::nullopt;
            return module.mid(prefix.size());
        };
        Result<Value> result
            = mapKeys(value, strip, action, u"Drop one of them first, or rename them apart."_s,
                      MetadataRule::Follow, prefixMap, report);
        if (!result)
            return result;
        const int total = strKeyCount(value);
        const int prefixed = countPrefixed(value, prefix);
        const int stripped = prefixed - int(kept.size());
        if (prefixed == 0) {
            report.summary = u"No key starts with %1; nothing changed"_s.arg(quoted(prefix));
        } else {
            report.summary = u"Stripped %1 from %2 of %3"_s.arg(quoted(prefix), number(stripped),
                                                                keysCount(total));
            if (!kept.isEmpty()) {
                QStringList keptKeys;
                for (const QString &key : strKeys(value)) {
                    if (kept.contains(key))
                        keptKeys.append(key);
                }
                report.notes.prepend(u"%1 %2 %3 because %4 taken: %5"_s.arg(
                    keysCount(kept.size()), kept.size() == 1 ? u"keeps"_s : u"keep"_s,
                    quoted(prefix),
                    kept.size() == 1 ? u"its stripped name is"_s : u"their stripped names are"_s,
                    quotedList(keptKeys)));
            }
            if (prefixed < total) {
                report.notes.prepend(u"%1 without %2 %3 as %4"_s.arg(
                    keysCount(total - prefixed), quoted(prefix),
                    total - prefixed == 1 ? u"stays"_s : u"stay"_s,
                    total - prefixed == 1 ? u"it is"_s : u"they are"_s));
            }
        }
        report.changed = stripped;
        return result;
    }

    static int countPrefixed(const Value &dict, const QString &prefix)
    {
        int n = 0;
        for (const Value::Entry &entry : dict.entries())
            n += entry.first.isString() && entry.first.toString().startsWith(prefix) ? 1 : 0;
        return n;
    }

    Result<Value> run(const Value &value, const AddPrefix &op, OperationReport &report)
    {
        const QString action = u"add the prefix %1"_s.arg(quoted(op.prefix));
        if (op.prefix.isEmpty())
            return Error{u"Cannot add an empty prefix; give the prefix, e.g. “module.”."_s};
        if (Status s = needDict(value, action); !s)
            return s.error();
        const QString prefix = op.prefix;
        const auto add = [prefix](const QString &key) -> std::optional<QString> {
            return prefix + key;
        };
        const auto prefixMap = [prefix](const QString &module) -> std::optional<QString> {
            return prefix + module;
        };
        Result<Value> result
            = mapKeys(value, add, action, QString(), MetadataRule::Follow, prefixMap, report);
        if (result)
            report.summary = u"Added %1 to %2"_s.arg(quoted(prefix), keysCount(report.changed));
        return result;
    }

    Result<Value> run(const Value &value, const RenameRegex &op, OperationReport &report)
    {
        const QString action
            = u"rename the keys matching /%1/ to %2"_s.arg(op.pattern, quoted(op.replacement));
        if (op.pattern.isEmpty())
            return Error{u"Cannot rename by an empty pattern; give a regular expression."_s};
        const QRegularExpression re(op.pattern);
        if (!re.isValid()) {
            return Error{u"The pattern /%1/ is not a valid regular expression: %2 at offset %3."_s
                             .arg(op.pattern, re.errorString())
                             .arg(re.patternErrorOffset())};
        }
        Result<QList<TemplatePart>> parts = parseReplacement(op.replacement, re);
        if (!parts)
            return parts.error();
        if (Status s = needDict(value, action); !s)
            return s.error();
        const QList<TemplatePart> replacement = parts.value();
        const auto rename = [&re, &replacement](const QString &key) -> std::optional<QString> {
            return substitute(key, re, replacement);
        };
        Result<Value> result
            = mapKeys(value, rename, action,
                      u"Change the pattern or the replacement so that every key stays unique."_s,
                      MetadataRule::DropIfRenamed, {}, report);
        if (result) {
            report.summary
                = u"Renamed %1 of %2"_s.arg(number(report.changed), keysCount(strKeyCount(value)));
        }
        return result;
    }

    Result<Value> run(const Value &value, const RenameKeys &op, OperationReport &report)
    {
        const QString action = u"rename the keys"_s;
        QHash<QString, QString> renames;
        for (const auto &[from, to] : op.renames) {
            if (renames.contains(from)) {
                return Error{u"Cannot rename %1 twice (to %2 and to %3); give one new name."_s.arg(
                    quoted(from), quoted(renames.value(from)), quoted(to))};
            }
            renames.insert(from, to);
        }
        if (Status s = needDict(value, action); !s)
            return s.error();
        QStringList absent;
        for (const auto &rename : op.renames) {
            if (!value.contains(rename.first))
                absent.append(rename.first);
        }
        const auto rename = [&renames](const QString &key) -> std::optional<QString> {
            return renames.value(key, key);
        };
        Result<Value> result = mapKeys(value, rename, action, u"Give every key its own new name."_s,
                                       MetadataRule::DropIfRenamed, {}, report);
        if (result) {
            report.summary = u"Renamed %1"_s.arg(keysCount(report.changed));
            if (!absent.isEmpty()) {
                report.notes.prepend(u"%1 to rename not in the dict: %2"_s.arg(
                    keysCount(absent.size()), quotedList(absent)));
            }
        }
        return result;
    }

    Result<Value> run(const Value &value, const ExtractDict &op, OperationReport &report)
    {
        if (op.path.isEmpty())
            return Error{u"Cannot extract a dict without a path; give its keys, e.g. "
                         u"[“state_dict”]."_s};
        Result<Value> nested = valueAt(value, op.path);
        if (!nested)
            return nested;
        if (!nested->isDict()) {
            return Error{u"Cannot extract %1: it is %2, not a dict of tensors."_s.arg(
                keyPathText(op.path), aTypeName(nested.value()))};
        }
        int tensors = 0;
        for (const Value::Entry &entry : nested->entries())
            tensors += entry.second.isTensor() ? 1 : 0;
        report.changed = 1;
        report.summary = u"Extracted %1: %2 (%3)"_s.arg(
            keyPathText(op.path), counted(nested->size(), u"entry"_s, u"entries"_s),
            counted(tensors, u"tensor"_s, u"tensors"_s));
        return nested;
    }

    Result<Value> run(const Value &value, const DropKeys &op, OperationReport &report)
    {
        if (op.patterns.isEmpty())
            return Error{u"Cannot drop keys without a pattern; give one, e.g. “fc.*”."_s};
        const QString action = u"drop the keys matching %1"_s.arg(listText(op.patterns));
        if (Status s = needDict(value, action); !s)
            return s.error();
        QList<QRegularExpression> regexes;
        for (const QString &pattern : op.patterns)
            regexes.append(fnmatchRegex(pattern));
        QList<int> hits(regexes.size(), 0);
        const auto drop = [&](const QString &key) -> std::optional<QString> {
            bool matched = false;
            for (qsizetype i = 0; i < regexes.size(); ++i) {
                if (regexes[i].match(key).hasMatch()) {
                    ++hits[i];
                    matched = true;
                }
            }
            return matched ? std::nullopt : std::optional<QString>(key);
        };
        Result<Value> result
            = mapKeys(value, drop, action, QString(), MetadataRule::Keep, {}, report);
        if (!result)
            return result;
        qint64 elements = 0;
        for (const Value::Entry &entry : value.entries()) {
            if (entry.first.isString() && report.dropped.contains(entry.first.toString())
                && entry.second.isTensor()) {
                elements += entry.second.toTensor().numel();
            }
        }
        report.summary = u"Dropped %1 (%2) matching %3"_s.arg(
            keysCount(report.dropped.size()), counted(elements, u"value"_s, u"values"_s),
            listText(op.patterns));
        QStringList unused;
        for (qsizetype i = 0; i < regexes.size(); ++i) {
            if (hits[i] == 0)
                unused.append(op.patterns[i]);
        }
        if (!unused.isEmpty())
            report.notes.append(u"No key matches %1"_s.arg(quotedList(unused)));
        return result;
    }

    Result<Value> run(const Value &value, const CastFloat &op, OperationReport &report)
    {
        if (!isRealFloat(op.to)) {
            return Error{u"Cannot cast to %1: choose float32, float16, bfloat16 or float64."_s.arg(
                dtypeName(op.to))};
        }
        QList<DType> from = op.from;
        if (from.isEmpty()) {
            for (const DType d : kAllDTypes) {
                if (isRealFloat(d) && d != op.to)
                    from.append(d);
            }
        }
        for (const DType d : std::as_const(from)) {
            if (!isRealFloat(d)) {
                return Error{u"Cannot cast %1 tensors: only float32, float16, bfloat16 and "
                             u"float64 are cast; integer, bool and complex tensors stay."_s.arg(
                                 dtypeName(d))};
            }
        }
        const DType to = op.to;
        const auto selected = [&](DType d) {
            return d != to && from.contains(d);
        };

        // Counts (over distinct tensors and storages).
        QMap<DType, int> castByType;
        QMap<DType, int> keptByType;
        QSet<const Storage *> storages;
        qint64 bytesBefore = 0;
        qint64 bytesAfter = 0;
        forEachMappedTensor(value, [&](const Tensor &t) {
            if (!t.storage)
                return;
            if (!selected(t.dtype())) {
                if (!isRealFloat(t.dtype()) || t.dtype() != to)
                    ++keptByType[t.dtype()];
                return;
            }
            ++castByType[t.dtype()];
            if (!storages.contains(t.storage.get())) {
                storages.insert(t.storage.get());
                bytesBefore += t.storage->byteCount();
                bytesAfter += t.storage->numel() * elementSize(to);
            }
        });

        int castCount = 0;
        QStringList castParts;
        for (const DType d : kAllDTypes) {
            if (castByType.value(d)) {
                castCount += castByType.value(d);
                castParts.append(number(castByType.value(d)) + u' ' + dtypeName(d));
            }
        }
        QStringList keptParts;
        for (const DType d : kAllDTypes) {
            if (keptByType.value(d))
                keptParts.append(number(keptByType.value(d)) + u' ' + dtypeName(d));
        }
        report.changed = castCount;
        if (castCount == 0) {
            report.summary = u"No tensor to cast to %1"_s.arg(dtypeName(to));
        } else {
            report.summary = u"Cast %1 (%2, %3) to %4: %5 → %6"_s.arg(
                counted(castCount, u"tensor"_s, u"tensors"_s), listText(castParts, 4),
                counted(storages.size(), u"storage"_s, u"storages"_s), dtypeName(to),
                dataSize(bytesBefore), dataSize(bytesAfter));
        }
        if (!keptParts.isEmpty())
            report.notes.append(u"Left as they are: %1"_s.arg(listText(keptParts, 6)));
        if (m_dryRun || castCount == 0)
            return value;

        QHash<const Storage *, StoragePtr> converted;
        std::optional<Error> unreadable; // a storage left in a file that changed since
        TensorMapper mapper([&](const Tensor &t) {
            if (!t.storage || !selected(t.storage->dtype))
                return t;
            StoragePtr &done = converted[t.storage.get()];
            if (!done) {
                const Result<QByteArray> data = t.storage->data();
                if (!data) {
                    unreadable = unreadable.value_or(data.error());
                    return t;
                }
                done = std::make_shared<Storage>();
                done->dtype = to;
                done->device = t.storage->device;
                done->bytes = convertElements(*t.storage, data->constData(), to);
            }
            Tensor result = t;
            result.storage = done;
            return result;
        });
        Result<Value> mapped = mapper.run(value);
        if (unreadable)
            return *unreadable;
        return mapped;
    }

    Result<Value> run(const Value &value, const MapDevices &op, OperationReport &report)
    {
        if (op.all.isEmpty() && op.mapping.isEmpty())
            return Error{u"Cannot map devices without a target; give a device such as “cpu” or "
                         u"a mapping such as “cuda:1” → “cuda:0”."_s};
        const auto checkDevice = [](const QString &device) -> Status {
            if (isDeviceString(device))
                return success();
            return Error{u"%1 is not a device such as “cpu” or “cuda:0”."_s.arg(quoted(device))};
        };
        QHash<QString, QString> mapping;
        if (!op.all.isEmpty()) {
            if (Status s = checkDevice(op.all); !s)
                return s.error();
        } else {
            for (const auto &[from, to] : op.mapping) {
                if (Status s = checkDevice(from); !s)
                    return s.error();
                if (Status s = checkDevice(to); !s)
                    return s.error();
                if (mapping.contains(from)) {
                    return Error{
                        u"The device %1 is mapped twice; give it one target."_s.arg(quoted(from))};
                }
                mapping.insert(from, to);
            }
        }
        const QString all = op.all;
        const auto target = [&](const QString &device) {
            return all.isEmpty() ? mapping.value(device, device) : all;
        };

        QSet<const Storage *> seen;
        QMap<std::pair<QString, QString>, int> moves;
        int unchanged = 0;
        forEachMappedTensor(value, [&](const Tensor &t) {
            if (!t.storage || seen.contains(t.storage.get()))
                return;
            seen.insert(t.storage.get());
            const QString to = target(t.storage->device);
            if (to == t.storage->device)
                ++unchanged;
            else
                ++moves[{t.storage->device, to}];
        });
        QStringList parts;
        int moved = 0;
        for (auto it = moves.cbegin(); it != moves.cend(); ++it) {
            moved += it.value();
            parts.append(
                u"%1 → %2 (%3)"_s.arg(it.key().first, it.key().second).arg(number(it.value())));
        }
        report.changed = moved;
        report.summary = moved == 0
            ? u"No storage to move"_s
            : u"Moved %1: %2"_s.arg(counted(moved, u"storage"_s, u"storages"_s),
                                    listText(parts, 6));
        if (unchanged > 0 && moved > 0) {
            report.notes.append(
                u"%1 already in place"_s.arg(counted(unchanged, u"storage"_s, u"storages"_s)));
        }
        if (m_dryRun || moved == 0)
            return value;

        QHash<const Storage *, StoragePtr> retagged;
        TensorMapper mapper([&](const Tensor &t) {
            if (!t.storage)
                return t;
            const QString to = target(t.storage->device);
            if (to == t.storage->device)
                return t;
            StoragePtr &done = retagged[t.storage.get()];
            if (!done) {
                done = std::make_shared<Storage>(*t.storage); // shares the bytes (implicitly)
                done->device = to;
            }
            Tensor result = t;
            result.storage = done;
            return result;
        });
        return mapper.run(value);
    }

    bool m_dryRun;
};

/// Runs the operations; the shared core of applyOperations() and previewOperations().
Result<RepairResult> runOperations(const Value &root, const QList<Operation> &operations,
                                   const KeyPath &at, bool dryRun, RepairPreview *preview)
{
    Result<Value> start = valueAt(root, at);
    if (!start)
        return start.error();
    Value current = start.value();
    if (preview)
        preview->keysBefore = keysOf(current);
    RepairResult result;
    Repairer repairer(dryRun);
    for (qsizetype i = 0; i < operations.size(); ++i) {
        OperationReport report;
        report.description = describe(operations[i]);
        Result<Value> next = repairer.apply(current, operations[i], report);
        if (!next) {
            if (operations.size() == 1)
                return next.error();
            return Error{u"Step %1 of %2 (%3): %4"_s.arg(i + 1)
                             .arg(operations.size())
                             .arg(report.description, next.errorMessage())};
        }
        current = std::move(next).value();
        result.steps.append(report);
    }
    if (preview)
        preview->keysAfter = keysOf(current);
    result.value = at.isEmpty() ? current : replaceAt(root, at, 0, current);
    return result;
}

// ---- Load report

/// The version that `_metadata` gives a module, -1 without one.
qint64 moduleVersion(const Value &metadata, const QString &module)
{
    if (!metadata.isDict())
        return -1;
    const Value *entry = metadata.find(module);
    if (!entry || !entry->isDict())
        return -1;
    const Value *version = entry->find(u"version");
    return version && version->isInt() ? version->toInt() : -1;
}

/// Groups keys by module prefix: the shortest prefix whose keys (in `universe`) are all in
/// `keys`, else the key's own module; single keys by themselves.
QList<KeyGroup> groupKeys(const QStringList &keys, const QStringList &universe)
{
    QHash<QString, int> total;
    QHash<QString, int> count;
    const auto countPrefixes = [](const QString &key, QHash<QString, int> &counts) {
        for (qsizetype dot = key.indexOf(u'.'); dot >= 0; dot = key.indexOf(u'.', dot + 1))
            ++counts[key.left(dot + 1)];
    };
    for (const QString &key : universe)
        countPrefixes(key, total);
    for (const QString &key : keys)
        countPrefixes(key, count);

    QList<KeyGroup> groups;
    QHash<QString, qsizetype> index;
    for (const QString &key : keys) {
        QString prefix;
        for (qsizetype dot = key.indexOf(u'.'); dot >= 0; dot = key.indexOf(u'.', dot + 1)) {
            const QString candidate = key.left(dot + 1);
            if (count.value(candidate) == total.value(candidate)) {
                prefix = candidate;
                break;
            }
        }
        if (prefix.isEmpty() && key.contains(u'.'))
            prefix = key.left(key.lastIndexOf(u'.') + 1);
        const QString pattern = prefix.isEmpty() ? globEscape(key) : globEscape(prefix) + u'*';
        auto it = index.constFind(pattern);
        if (it == index.cend()) {
            it = index.insert(pattern, groups.size());
            groups.append({pattern, {}, prefix.isEmpty() ? 1 : total.value(prefix)});
        }
        groups[it.value()].keys.append(key);
    }
    for (KeyGroup &group : groups) {
        if (group.keys.size() == 1) {
            group.pattern = globEscape(group.keys.first());
            group.total = 1;
        }
    }
    return groups;
}

QStringList groupPatterns(const QList<KeyGroup> &groups)
{
    QStringList patterns;
    for (const KeyGroup &group : groups)
        patterns.append(group.pattern);
    return patterns;
}

QString percent(qint64 part, qint64 whole)
{
    if (whole <= 0)
        return u"0%"_s;
    double p = 100.0 * double(part) / double(whole);
    if (part < whole)
        p = std::min(p, 99.9);
    if (part > 0)
        p = std::max(p, 0.1);
    return QString::number(p, 'f', 1) + u'%';
}

QString mismatchText(const KeyMismatch &m)
{
    if (m.sourceType != u"torch.Tensor"_s && m.sourceType != u"torch.nn.Parameter"_s)
        return u"%1 is %2 in the checkpoint"_s.arg(m.key, m.sourceType);
    return u"%1: %2 in the checkpoint, %3 in the model"_s.arg(m.key, shapeText(m.sourceShape),
                                                              shapeText(m.targetShape));
}

/// A classifier for another number of classes is the usual reason for a shape mismatch: a
/// sentence that says so when the first mismatch looks like one, else empty.
QString headHint(const QList<KeyMismatch> &mismatched)
{
    for (const KeyMismatch &m : mismatched) {
        if (m.sourceShape.size() == m.targetShape.size() && !m.sourceShape.isEmpty()
            && m.sourceShape.mid(1) == m.targetShape.mid(1)
            && m.sourceShape[0] != m.targetShape[0]) {
            return u" %1 has %2 outputs in the checkpoint and %3 in the model: a head for another "
                   u"number of classes?"_s.arg(m.key, number(m.sourceShape[0]),
                                               number(m.targetShape[0]));
        }
    }
    return QString();
}

QString loadSummary(const LoadReport &r)
{
    QString text;
    QString filled;
    if (!r.filledByTorch.isEmpty()) {
        filled = u" BatchNorm fills in %1 that the checkpoint lacks (its _metadata predates "
                 u"them)."_s.arg(counted(r.filledByTorch.size(), u"num_batches_tracked buffer"_s,
                                         u"num_batches_tracked buffers"_s));
    }
    QString dtypes;
    if (!r.dtypeDiffers.isEmpty()) {
        QMap<QString, int> pairs;
        for (const KeyMismatch &m : r.dtypeDiffers)
            ++pairs[dtypeName(m.sourceDType) + u" → "_s + dtypeName(m.targetDType)];
        QStringList parts;
        for (auto it = pairs.cbegin(); it != pairs.cend(); ++it)
            parts.append(u"%1 %2"_s.arg(number(it.value()), it.key()));
        dtypes = u" %1 another dtype than the model's (%2); load_state_dict converts them."_s.arg(
            r.dtypeDiffers.size() == 1 ? u"1 tensor has"_s
                                       : number(r.dtypeDiffers.size()) + u" tensors have"_s,
            listText(parts));
    }
    if (r.loadsStrictly()) {
        if (r.targetCount == 0)
            return u"The model expects no keys and the checkpoint has none."_s;
        return u"All %1 of the model are in the checkpoint with the same shapes (%2); "
               u"load_state_dict(strict=True) will load it."_s.arg(
                   keysCount(r.targetCount), counted(r.targetElements, u"value"_s, u"values"_s))
            + dtypes + filled;
    }
    text = u"%1 of %2 of the model match the checkpoint, covering %3 of %4 values (%5)"_s.arg(
        number(r.matched.size()), keysCount(r.targetCount), number(r.matchedElements),
        number(r.targetElements), percent(r.matchedElements, r.targetElements));
    QStringList parts;
    if (!r.missing.isEmpty()) {
        parts.append(u"%1 missing (%2)"_s.arg(
            r.missing.size() == 1 ? u"1 is"_s : number(r.missing.size()) + u" are"_s,
            listText(groupPatterns(r.missingGroups))));
    }
    if (!r.unexpected.isEmpty()) {
        parts.append(u"%1 of the checkpoint %2 unexpected (%3)"_s.arg(
            keysCount(r.unexpected.size()), r.unexpected.size() == 1 ? u"is"_s : u"are"_s,
            listText(groupPatterns(r.unexpectedGroups))));
    }
    if (!r.mismatched.isEmpty()) {
        QString part = u"%1 another shape (%2"_s.arg(
            r.mismatched.size() == 1 ? u"1 has"_s : number(r.mismatched.size()) + u" have"_s,
            mismatchText(r.mismatched.first()));
        if (r.mismatched.size() > 1)
            part += u", and %1 more"_s.arg(number(r.mismatched.size() - 1));
        parts.append(part + u')');
    }
    text += u"; "_s + listText(parts, 3) + u". "_s;
    if (r.matched.isEmpty() && r.targetCount > 0) {
        text += u"Nothing matches: check that this is the model the checkpoint was saved from, "
                u"or let the repair proposal find a prefix to strip or add."_s;
    } else if (!r.mismatched.isEmpty()) {
        text += u"load_state_dict fails even with strict=False because of the shapes; drop "
                u"those keys (or give the model the same shapes) to load the rest."_s
            + headHint(r.mismatched);
    } else if (r.missing.isEmpty()) {
        text += u"load_state_dict(strict=True) fails on the unexpected keys; strict=False "
                u"loads every key of the model and ignores them."_s;
    } else {
        text += u"load_state_dict(strict=True) fails; strict=False loads the %1 and leaves the "
                u"missing ones as the model initialised them."_s.arg(
                    counted(r.matched.size(), u"matching key"_s, u"matching keys"_s));
    }
    return text + dtypes + filled;
}

// ---- Proposal

/// The str-keyed entries of a state dict, as the proposal search sees them.
struct KeyEntry
{
    QString key;
    bool tensor = false;
    QList<qint64> shape;
};

class ProposalSearch
{
public:
    explicit ProposalSearch(const TargetSpec &target)
    {
        for (const KeySpec &spec : target) {
            if (!m_target.contains(spec.key)) {
                m_target.insert(spec.key, spec.shape);
                m_targetKeys.append(spec.key);
            }
        }
    }

    /// The lossless operations for the state dict `dict`.
    QList<Operation> search(const Value &dict)
    {
        QList<KeyEntry> entries;
        for (const Value::Entry &entry : dict.entries()) {
            if (!entry.first.isString())
                continue;
            KeyEntry e{entry.first.toString(), entry.second.isTensor(), {}};
            if (e.tensor)
                e.shape = entry.second.toTensor().shape;
            entries.append(e);
        }
        QList<Operation> operations;
        for (int round = 0; round < kMaxPrefixRounds; ++round) {
            std::optional<Candidate> best = bestPrefixCandidate(entries);
            if (!best)
                break;
            entries = renamed(entries, *best).value();
            operations.append(best->operation());
        }
        const QList<std::pair<QString, QString>> suffixRenames = suffixMatches(entries);
        if (!suffixRenames.isEmpty())
            operations.append(RenameKeys{suffixRenames});
        return operations;
    }

private:
    /// Strip `from` (to empty), add `to` (from empty), or replace the prefix `from` by `to`.
    struct Candidate
    {
        QString from;
        QString to;
        int votes = 0;
        bool keepClashing = false; ///< a strip that leaves the keys whose names are taken

        int kind() const { return to.isEmpty() ? 0 : from.isEmpty() ? 1 : 2; }
        QString rename(const QString &key) const
        {
            if (from.isEmpty())
                return to + key;
            return key.startsWith(from) ? to + key.mid(from.size()) : key;
        }
        Operation operation() const
        {
            if (to.isEmpty())
                return StripPrefix{from, keepClashing};
            if (from.isEmpty())
                return AddPrefix{to};
            QString replacement = to;
            replacement.replace(u"\\"_s, u"\\\\"_s);
            return RenameRegex{u"^"_s + QRegularExpression::escape(from), replacement};
        }
    };

    bool exact(const KeyEntry &e) const
    {
        const auto it = m_target.constFind(e.key);
        return e.tensor && it != m_target.cend() && it.value() == e.shape;
    }

    /// The entries renamed by `c`, or nullopt when two keys would become one.
    static std::optional<QList<KeyEntry>> renamed(const QList<KeyEntry> &entries,
                                                  const Candidate &c)
    {
        QList<KeyEntry> out = entries;
        QSet<QString> kept;
        if (c.keepClashing) {
            QStringList keys;
            for (const KeyEntry &e : entries)
                keys.append(e.key);
            kept = clashingKeys(keys, c.from);
        }
        QSet<QString> seen;
        seen.reserve(out.size());
        for (KeyEntry &e : out) {
            if (!kept.contains(e.key))
                e.key = c.rename(e.key);
            if (seen.contains(e.key))
                return std::nullopt;
            seen.insert(e.key);
        }
        return out;
    }

    /// Splits at each dot: ("", key), ("a.", "b.c"), ("a.b.", "c").
    static QList<std::pair<QString, QString>> splits(const QString &key, bool withEmpty)
    {
        QList<std::pair<QString, QString>> out;
        if (withEmpty)
            out.append({QString(), key});
        for (qsizetype dot = key.indexOf(u'.'); dot >= 0; dot = key.indexOf(u'.', dot + 1)) {
            if (dot + 1 < key.size())
                out.append({key.left(dot + 1), key.mid(dot + 1)});
        }
        return out;
    }

    std::optional<Candidate> bestPrefixCandidate(const QList<KeyEntry> &entries) const
    {
        QSet<QString> sourceKeys;
        QStringList unexpected;
        for (const KeyEntry &e : entries) {
            sourceKeys.insert(e.key);
            if (!m_target.contains(e.key))
                unexpected.append(e.key);
        }
        QStringList missing;
        for (const QString &key : m_targetKeys) {
            if (!sourceKeys.contains(key))
                missing.append(key);
        }
        if (unexpected.isEmpty() || missing.isEmpty())
            return std::nullopt;
        const QSet<QString> missingSet(missing.cbegin(), missing.cend());
        const QSet<QString> unexpectedSet(unexpected.cbegin(), unexpected.cend());

        // Votes: how many unmatched keys each candidate would give a missing name.
        QHash<std::pair<QString, QString>, int> votes;
        for (const QString &u : std::as_const(unexpected)) {
            for (const auto &[prefix, tail] : splits(u, false)) {
                if (missingSet.contains(tail))
                    ++votes[{prefix, QString()}];
            }
        }
        QHash<QString, QStringList> missingByTail; // tails of ≥ 2 components
        for (const QString &m : std::as_const(missing)) {
            for (const auto &[prefix, tail] : splits(m, false)) {
                if (unexpectedSet.contains(tail))
                    ++votes[{QString(), prefix}];
                if (tail.contains(u'.'))
                    missingByTail[tail].append(prefix);
            }
        }
        for (const QString &u : std::as_const(unexpected)) {
            for (const auto &[prefix, tail] : splits(u, false)) {
                const auto it = missingByTail.constFind(tail);
                if (it == missingByTail.cend())
                    continue;
                for (const QString &to : it.value()) {
                    if (to != prefix)
                        ++votes[{prefix, to}];
                }
            }
        }
        // Module prefixes the checkpoint already uses.
        QSet<QString> sourcePrefixes;
        for (const KeyEntry &e : entries) {
            for (qsizetype dot = e.key.indexOf(u'.'); dot >= 0; dot = e.key.indexOf(u'.', dot + 1))
                sourcePrefixes.insert(e.key.left(dot + 1));
        }
        QList<Candidate> candidates;
        for (auto it = votes.cbegin(); it != votes.cend(); ++it) {
            const Candidate c{it.key().first, it.key().second, it.value()};
            // A replacement moves a module that several keys share into a module the checkpoint
            // does not fill yet (merging two modules into one is a guess too far). Single keys
            // are left to suffix matching, which also checks that the match is unique.
            if (c.kind() == 2 && (c.votes < 2 || sourcePrefixes.contains(c.to)))
                continue;
            candidates.append(c);
        }
        std::sort(candidates.begin(), candidates.end(), [](const Candidate &a, const Candidate &b) {
            if (a.votes != b.votes)
                return a.votes > b.votes;
            if (a.kind() != b.kind())
                return a.kind() < b.kind();
            if (a.from != b.from)
                return a.from < b.from;
            return a.to < b.to;
        });
        if (candidates.size() > kMaxCandidates)
            candidates.resize(kMaxCandidates);

        int exactBefore = 0;
        for (const KeyEntry &e : entries)
            exactBefore += exact(e) ? 1 : 0;

        std::optional<Candidate> best;
        int bestExact = exactBefore;
        int bestNamed = 0;
        int bestChanged = 0;
        for (Candidate c : std::as_const(candidates)) {
            std::optional<QList<KeyEntry>> after = renamed(entries, c);
            if (!after && c.kind() == 0) {
                // A strip blocked by keys that are there already: strip the others.
                c.keepClashing = true;
                after = renamed(entries, c);
            }
            if (!after)
                continue; // would merge keys
            int exactAfter = 0;
            int named = 0;
            int changed = 0;
            bool lost = false;
            for (qsizetype i = 0; i < entries.size(); ++i) {
                const bool was = exact(entries[i]);
                const bool is = exact(after->at(i));
                lost = lost || (was && !is);
                exactAfter += is ? 1 : 0;
                named += m_target.contains(after->at(i).key) ? 1 : 0;
                changed += after->at(i).key != entries[i].key ? 1 : 0;
            }
            if (lost || exactAfter <= exactBefore)
                continue;
            // Candidates come sorted, so the first of equal merit wins.
            const bool better = !best || exactAfter > bestExact
                || (exactAfter == bestExact
                    && (named > bestNamed || (named == bestNamed && changed < bestChanged)));
            if (better) {
                best = c;
                bestExact = exactAfter;
                bestNamed = named;
                bestChanged = changed;
            }
        }
        return best;
    }

    /// Renames of unmatched tensors to missing keys of the same shape that share at least their
    /// last two components, where each is the other's only best match.
    QList<std::pair<QString, QString>> suffixMatches(const QList<KeyEntry> &entries) const
    {
        QSet<QString> sourceKeys;
        for (const KeyEntry &e : entries)
            sourceKeys.insert(e.key);
        QStringList missing;
        for (const QString &key : m_targetKeys) {
            if (!sourceKeys.contains(key))
                missing.append(key);
        }
        // Suffixes of ≥ 2 components of the missing keys → indices in `missing`.
        QHash<QString, QList<qsizetype>> bySuffix;
        for (qsizetype t = 0; t < missing.size(); ++t) {
            const QStringList parts = missing[t].split(u'.');
            for (qsizetype n = 2; n <= parts.size(); ++n)
                bySuffix[parts.mid(parts.size() - n).join(u'.')].append(t);
        }
        // Per unmatched source entry: the best common length and its targets.
        struct Best
        {
            qsizetype length = 0;
            QList<qsizetype> others;
        };
        QList<Best> bestOfSource(entries.size());
        QList<Best> bestOfTarget(missing.size());
        const auto offer = [](Best &best, qsizetype length, qsizetype other) {
            if (length > best.length) {
                best.length = length;
                best.others = {other};
            } else if (length == best.length && !best.others.contains(other)) {
                best.others.append(other);
            }
        };
        for (qsizetype s = 0; s < entries.size(); ++s) {
            const KeyEntry &e = entries[s];
            if (!e.tensor || m_target.contains(e.key))
                continue;
            const QStringList parts = e.key.split(u'.');
            for (qsizetype n = 2; n <= parts.size(); ++n) {
                const auto it = bySuffix.constFind(parts.mid(parts.size() - n).join(u'.'));
                if (it == bySuffix.cend())
                    break; // longer suffixes cannot match either
                for (const qsizetype t : it.value()) {
                    if (m_target.value(missing[t]) != e.shape)
                        continue;
                    offer(bestOfSource[s], n, t);
                    offer(bestOfTarget[t], n, s);
                }
            }
        }
        QList<std::pair<QString, QString>> renames;
        for (qsizetype s = 0; s < entries.size(); ++s) {
            const Best &bs = bestOfSource[s];
            if (bs.others.size() != 1)
                continue;
            const Best &bt = bestOfTarget[bs.others.first()];
            if (bt.others.size() == 1 && bt.others.first() == s && bt.length == bs.length)
                renames.append({entries[s].key, missing[bs.others.first()]});
        }
        return renames;
    }

    QHash<QString, QList<qint64>> m_target;
    QStringList m_targetKeys;
};

// ---- Candidates

int nameRank(const KeyPath &path)
{
    if (path.isEmpty())
        return 0;
    const QString name = path.last().toLower();
    // EMA copies: "ema", "model_ema", "state_dict_ema", "ema-model".
    const QString words = QString(name).replace(u'.', u'_').replace(u'-', u'_');
    if (words.split(u'_').contains(u"ema"_s))
        return 2;
    static const QStringList usual{
        u"state_dict"_s, u"model_state_dict"_s, u"model"_s,   u"net"_s,    u"network"_s,
        u"module"_s,     u"model_state"_s,      u"weights"_s, u"params"_s, u"student"_s,
    };
    return usual.contains(name) ? 0 : 1;
}

/// Every dict reached from the root through str keys that holds tensors under str keys, in walk
/// order (a dict before the dicts inside it).
QList<StateDictCandidate> collectCandidates(const Value &root)
{
    QList<StateDictCandidate> out;
    walkValues(root, [&](WalkPath path, const Value &value) {
        const bool byStrKeys = path.empty()
            || (path.back().kind == WalkStep::Kind::Entry && path.back().key->isString());
        if (!byStrKeys || !value.isDict() || path.size() > size_t(kMaxDepth))
            return WalkAction::SkipChildren;
        StateDictCandidate candidate;
        for (const WalkStep &step : path)
            candidate.path.append(step.key->toString());
        for (const Value::Entry &entry : value.entries()) {
            if (entry.first.isString() && entry.second.isTensor()) {
                ++candidate.tensorCount;
                candidate.elementCount += entry.second.toTensor().numel();
            } else {
                ++candidate.otherCount;
            }
        }
        if (candidate.tensorCount > 0)
            out.append(candidate);
        return WalkAction::Continue;
    });
    return out;
}

} // namespace

// ------------------------------------------------------------------------------------------------

QString keyPathText(const KeyPath &path)
{
    QString text = u"root"_s;
    for (const QString &key : path)
        text += u"[\""_s + key + u"\"]"_s;
    return text;
}

QList<StateDictCandidate> findStateDicts(const Value &root)
{
    QList<StateDictCandidate> candidates = collectCandidates(root);
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const StateDictCandidate &a, const StateDictCandidate &b) {
                         if (a.tensorCount != b.tensorCount)
                             return a.tensorCount > b.tensorCount;
                         return nameRank(a.path) < nameRank(b.path);
                     });
    return candidates;
}

Result<Value> valueAt(const Value &root, const KeyPath &path)
{
    Value current = root;
    for (qsizetype i = 0; i < path.size(); ++i) {
        const QString here = keyPathText(path.mid(0, i));
        if (!current.isDict()) {
            return Error{u"Cannot find %1: %2 is %3, not a dict."_s.arg(keyPathText(path), here,
                                                                        aTypeName(current))};
        }
        const Value *next = current.find(path[i]);
        if (!next) {
            QStringList keys;
            for (const Value::Entry &entry : current.entries())
                keys.append(keyText(entry.first));
            return Error{u"Cannot find %1: %2 has no key %3 (its keys: %4). Pick one of the "
                         u"state dicts the checkpoint holds."_s.arg(
                             keyPathText(path), here, quoted(path[i]),
                             keys.isEmpty() ? u"none"_s : quotedList(keys, 8))};
        }
        current = *next;
    }
    return current;
}

QString StripPrefix::description() const
{
    if (keepClashing)
        return u"Strip the prefix %1 where the name is free"_s.arg(quoted(prefix));
    return u"Strip the prefix %1"_s.arg(quoted(prefix));
}

QString AddPrefix::description() const
{
    return u"Add the prefix %1"_s.arg(quoted(prefix));
}

QString RenameRegex::description() const
{
    return u"Rename the keys matching /%1/ to %2"_s.arg(pattern, quoted(replacement));
}

QString RenameKeys::description() const
{
    QStringList parts;
    for (const auto &[from, to] : renames)
        parts.append(from + u" → "_s + to);
    if (parts.isEmpty())
        return u"Rename no key"_s;
    return u"Rename %1: %2"_s.arg(keysCount(renames.size()), listText(parts, 2));
}

QString ExtractDict::description() const
{
    return u"Use the dict at %1"_s.arg(keyPathText(path));
}

QString DropKeys::description() const
{
    return u"Drop the keys matching %1"_s.arg(listText(patterns, 4));
}

QString CastFloat::description() const
{
    if (from.isEmpty())
        return u"Cast floating point tensors to %1"_s.arg(dtypeName(to));
    QStringList names;
    for (const DType d : from)
        names.append(dtypeName(d));
    return u"Cast %1 tensors to %2"_s.arg(listText(names, 4), dtypeName(to));
}

QString MapDevices::description() const
{
    if (!all.isEmpty())
        return u"Put every storage on %1"_s.arg(all);
    QStringList parts;
    for (const auto &[from, to] : mapping)
        parts.append(from + u" → "_s + to);
    return u"Map the devices %1"_s.arg(listText(parts, 4));
}

QString describe(const Operation &operation)
{
    return std::visit([](const auto &op) { return op.description(); }, operation);
}

Result<RepairResult> applyOperations(const Value &root, const QList<Operation> &operations,
                                     const KeyPath &at)
{
    return runOperations(root, operations, at, false, nullptr);
}

Result<RepairPreview> previewOperations(const Value &root, const QList<Operation> &operations,
                                        const KeyPath &at)
{
    RepairPreview preview;
    Result<RepairResult> result = runOperations(root, operations, at, true, &preview);
    if (!result)
        return result.error();
    preview.steps = result->steps;
    return preview;
}

TargetSpec targetFromStateDict(const Value &stateDict)
{
    TargetSpec target;
    if (!stateDict.isDict())
        return target;
    for (const Value::Entry &entry : stateDict.entries()) {
        if (entry.first.isString() && entry.second.isTensor()) {
            const Tensor t = entry.second.toTensor();
            target.append({entry.first.toString(), t.shape, t.dtype()});
        }
    }
    return target;
}

QString KeyGroup::text(const QString &kind) const
{
    if (keys.size() == 1 && total == 1 && !pattern.endsWith(u'*'))
        return u"%1: %2"_s.arg(pattern, kind);
    if (keys.size() == total)
        return u"%1: %2 %3"_s.arg(pattern, number(keys.size()), kind);
    return u"%1: %2 of %3 %4"_s.arg(pattern, number(keys.size()), number(total), kind);
}

bool LoadReport::loadsStrictly() const
{
    return missing.isEmpty() && unexpected.isEmpty() && mismatched.isEmpty();
}

LoadReport loadReport(const Value &stateDict, const TargetSpec &target)
{
    LoadReport report;
    QHash<QString, Value> source;
    QStringList sourceKeys;
    if (stateDict.isDict()) {
        for (const Value::Entry &entry : stateDict.entries()) {
            const QString key = keyText(entry.first);
            if (!source.contains(key)) {
                source.insert(key, entry.second);
                sourceKeys.append(key);
            }
        }
    }
    const Value state = stateDict.state();
    const Value metadata = state.isDict() ? state.value(u"_metadata") : Value();

    QSet<QString> targetKeys;
    QStringList targetOrder;
    for (const KeySpec &spec : target) {
        if (targetKeys.contains(spec.key))
            continue;
        targetKeys.insert(spec.key);
        targetOrder.append(spec.key);
        const qint64 elements = elementsOf(spec.shape);
        report.targetElements += elements;
        const auto it = source.constFind(spec.key);
        if (it == source.cend()) {
            // BatchNorm's _load_from_state_dict adds this buffer itself for version < 2.
            const qsizetype dot = spec.key.lastIndexOf(u'.');
            const QString name = spec.key.mid(dot + 1);
            const QString module = dot < 0 ? QString() : spec.key.left(dot);
            if (name == u"num_batches_tracked"_s && moduleVersion(metadata, module) < 2)
                report.filledByTorch.append(spec.key);
            else
                report.missing.append(spec.key);
            continue;
        }
        KeyMismatch m;
        m.key = spec.key;
        m.sourceType = it.value().typeName();
        m.targetShape = spec.shape;
        m.targetDType = spec.dtype;
        if (it.value().isTensor()) {
            const Tensor t = it.value().toTensor();
            m.sourceShape = t.shape;
            m.sourceDType = t.dtype();
            if (t.shape == spec.shape) {
                report.matched.append(spec.key);
                report.matchedElements += elements;
                if (t.dtype() != spec.dtype)
                    report.dtypeDiffers.append(m);
                continue;
            }
        }
        report.mismatched.append(m);
    }
    for (const QString &key : std::as_const(sourceKeys)) {
        if (!targetKeys.contains(key))
            report.unexpected.append(key);
    }
    report.targetCount = int(targetOrder.size());
    report.sourceCount = int(sourceKeys.size());

    QStringList mismatchedKeys;
    for (const KeyMismatch &m : std::as_const(report.mismatched))
        mismatchedKeys.append(m.key);
    report.missingGroups = groupKeys(report.missing, targetOrder);
    report.unexpectedGroups = groupKeys(report.unexpected, sourceKeys);
    report.mismatchedGroups = groupKeys(mismatchedKeys, targetOrder);
    report.summary = loadSummary(report);
    return report;
}

namespace {

/// Globs that drop exactly the keys of `groups`: a group's pattern when it covers every key
/// under it, else its keys one by one.
QStringList dropPatterns(const QList<KeyGroup> &groups)
{
    QStringList patterns;
    for (const KeyGroup &group : groups) {
        if (group.keys.size() == group.total) {
            patterns.append(group.pattern);
        } else {
            for (const QString &key : group.keys)
                patterns.append(globEscape(key));
        }
    }
    return patterns;
}

} // namespace

Result<RepairProposal> proposeRepair(const Value &checkpoint, const TargetSpec &target)
{
    const QList<StateDictCandidate> candidates = findStateDicts(checkpoint);
    if (candidates.isEmpty()) {
        return Error{u"The checkpoint holds no dict of tensors (%1 without tensors under str "
                     u"keys); it may be a whole pickled model or TorchScript, which need loading "
                     u"in Python first."_s.arg(aTypeName(checkpoint))};
    }
    ProposalSearch search(target);
    std::optional<RepairProposal> best;
    for (const StateDictCandidate &candidate : candidates) {
        const Value dict = valueAt(checkpoint, candidate.path).value();
        RepairProposal proposal;
        proposal.path = candidate.path;
        proposal.operations = search.search(dict);
        proposal.before = loadReport(dict, target);
        Result<RepairResult> applied = applyOperations(dict, proposal.operations);
        if (!applied) {
            // The search avoids merges, so this is a bug; propose nothing rather than a loss.
            proposal.operations.clear();
            proposal.after = proposal.before;
        } else {
            proposal.after = loadReport(applied->value, target);
        }
        if (!best || proposal.after.matched.size() > best->after.matched.size()
            || (proposal.after.matched.size() == best->after.matched.size()
                && proposal.after.mismatched.size() < best->after.mismatched.size())) {
            best = std::move(proposal);
        }
    }
    RepairProposal &p = *best;

    if (!p.after.mismatched.isEmpty()) {
        p.suggestions.append(
            {DropKeys{dropPatterns(p.after.mismatchedGroups)},
             u"%1 another shape in the checkpoint (%2); without %3, load_state_dict(strict="
             u"False) loads the rest and the model keeps its own initial values there."_s.arg(
                 p.after.mismatched.size() == 1
                     ? u"1 key has"_s
                     : number(p.after.mismatched.size()) + u" keys have"_s,
                 mismatchText(p.after.mismatched.first()),
                 p.after.mismatched.size() == 1 ? u"it"_s : u"them"_s)});
    }
    if (!p.after.unexpected.isEmpty()) {
        p.suggestions.append(
            {DropKeys{dropPatterns(p.after.unexpectedGroups)},
             u"%1 of the checkpoint %2 no place in the model; load_state_dict(strict=True) "
             u"refuses them."_s.arg(keysCount(p.after.unexpected.size()),
                                    p.after.unexpected.size() == 1 ? u"has"_s : u"have"_s)});
    }

    const QString where = p.path.isEmpty() ? QString() : u"In %1: "_s.arg(keyPathText(p.path));
    const QString result = u"%1 of %2 of the model match"_s.arg(number(p.after.matched.size()),
                                                                keysCount(p.after.targetCount));
    if (p.operations.isEmpty()) {
        p.summary = where
            + (p.after.loadsStrictly()
                   ? u"The checkpoint fits the model as it is: "_s + result + u'.'
                   : u"No lossless renaming improves the match: "_s + result + u'.');
    } else {
        QStringList steps;
        for (const Operation &op : std::as_const(p.operations))
            steps.append(describe(op));
        p.summary = where + steps.join(u", then "_s) + u": "_s + result + u" (before: "_s
            + number(p.before.matched.size()) + u")."_s;
    }
    return std::move(p);
}

bool StateDictDiff::identical() const
{
    return onlyInA.isEmpty() && onlyInB.isEmpty() && shapeDiffers.isEmpty()
        && otherDiffers.isEmpty() && identicalCount == compared.size();
}

Result<StateDictDiff> diffStateDicts(const Value &a, const Value &b)
{
    if (!a.isDict() || !b.isDict()) {
        return Error{
            u"Cannot compare %1 with %2: both must be state dicts (dicts of tensors); "
            u"extract them from their checkpoints first."_s.arg(aTypeName(a), aTypeName(b))};
    }
    QHash<QString, Value> inB;
    for (const Value::Entry &entry : b.entries())
        inB.insert(keyText(entry.first), entry.second);
    QSet<QString> inA;

    StateDictDiff diff;
    QString maxKey;
    for (const Value::Entry &entry : a.entries()) {
        const QString key = keyText(entry.first);
        inA.insert(key);
        const auto it = inB.constFind(key);
        if (it == inB.cend()) {
            diff.onlyInA.append(key);
            continue;
        }
        const Value &va = entry.second;
        const Value &vb = it.value();
        if (!va.isTensor() || !vb.isTensor()) {
            if (!(va == vb))
                diff.otherDiffers.append(key);
            continue;
        }
        const Tensor ta = va.toTensor();
        const Tensor tb = vb.toTensor();
        TensorDifference d;
        d.key = key;
        d.shapeA = ta.shape;
        d.shapeB = tb.shape;
        d.dtypeA = ta.dtype();
        d.dtypeB = tb.dtype();
        if (ta.shape != tb.shape) {
            diff.shapeDiffers.append(d);
            continue;
        }
        Result<QByteArray> bytesA = ta.contiguousBytes();
        Result<QByteArray> bytesB = tb.contiguousBytes();
        if (!bytesA || !bytesB) {
            return Error{u"Cannot compare %1: %2"_s.arg(
                quoted(key), bytesA ? bytesB.errorMessage() : bytesA.errorMessage())};
        }
        d.identical = d.dtypeA == d.dtypeB && bytesA.value() == bytesB.value();
        if (!d.identical) {
            const auto *pa = reinterpret_cast<const uchar *>(bytesA->constData());
            const auto *pb = reinterpret_cast<const uchar *>(bytesB->constData());
            const qint64 n = ta.numel();
            long double maxDiff = 0;
            for (qint64 i = 0; i < n; ++i) {
                const Number x = elementAt(pa, d.dtypeA, i);
                const Number y = elementAt(pb, d.dtypeB, i);
                const bool nanX = std::isnan(x.real()) || std::isnan(x.imag());
                const bool nanY = std::isnan(y.real()) || std::isnan(y.imag());
                if (nanX || nanY) {
                    d.nanMismatches += nanX != nanY ? 1 : 0;
                    continue;
                }
                long double delta;
                if (x == y)
                    delta = 0; // equal infinities too
                else
                    delta = std::hypot(x.real() - y.real(), x.imag() - y.imag());
                if (std::isnan(delta)) // inf - inf of one sign in one part
                    delta = std::numeric_limits<long double>::infinity();
                maxDiff = std::max(maxDiff, delta);
            }
            d.maxAbsDiff = double(maxDiff);
        }
        if (d.dtypeA != d.dtypeB)
            diff.dtypeDiffers.append(key);
        if (d.identical)
            ++diff.identicalCount;
        if (!d.identical && (maxKey.isEmpty() || d.maxAbsDiff > diff.maxAbsDiff)) {
            diff.maxAbsDiff = d.maxAbsDiff;
            maxKey = key;
        }
        diff.compared.append(d);
    }
    for (const Value::Entry &entry : b.entries()) {
        const QString key = keyText(entry.first);
        if (!inA.contains(key))
            diff.onlyInB.append(key);
    }

    if (diff.identical()) {
        diff.summary = u"The state dicts are identical: %1, every tensor bit for bit."_s.arg(
            keysCount(a.size()));
        return diff;
    }
    QStringList parts;
    const qsizetype differing = diff.compared.size() - diff.identicalCount;
    parts.append(u"%1 of %2 tensors bit-identical"_s.arg(number(diff.identicalCount),
                                                         number(diff.compared.size())));
    if (differing > 0) {
        QString part = u"%1 differ%2 (largest |A − B|: %3 in %4)"_s.arg(
            number(differing), differing == 1 ? u"s"_s : QString(),
            QString::number(diff.maxAbsDiff, 'g', 6), maxKey);
        parts.append(part);
    }
    if (!diff.dtypeDiffers.isEmpty()) {
        parts.append(u"%1 with another dtype"_s.arg(
            counted(diff.dtypeDiffers.size(), u"tensor"_s, u"tensors"_s)));
    }
    if (!diff.shapeDiffers.isEmpty()) {
        QStringList keys;
        for (const TensorDifference &d : std::as_const(diff.shapeDiffers))
            keys.append(d.key);
        parts.append(u"%1 of another shape (%2)"_s.arg(
            counted(keys.size(), u"tensor"_s, u"tensors"_s), listText(keys)));
    }
    if (!diff.otherDiffers.isEmpty()) {
        parts.append(u"%1 with other non-tensor values (%2)"_s.arg(
            keysCount(diff.otherDiffers.size()), listText(diff.otherDiffers)));
    }
    if (!diff.onlyInA.isEmpty()) {
        parts.append(u"%1 only in A (%2)"_s.arg(
            keysCount(diff.onlyInA.size()),
            listText(groupPatterns(groupKeys(diff.onlyInA, keysOf(a))))));
    }
    if (!diff.onlyInB.isEmpty()) {
        parts.append(u"%1 only in B (%2)"_s.arg(
            keysCount(diff.onlyInB.size()),
            listText(groupPatterns(groupKeys(diff.onlyInB, keysOf(b))))));
    }
    diff.summary = listText(parts, 8) + u'.';
    return diff;
}

Result<FittedStateDict> fitStateDict(const Value &checkpoint, const TargetSpec &target)
{
    Result<RepairProposal> proposal = proposeRepair(checkpoint, target);
    if (!proposal)
        return proposal.error();
    Result<RepairResult> repaired
        = applyOperations(checkpoint, proposal->operations, proposal->path);
    if (!repaired)
        return repaired.error();
    Result<Value> dict = valueAt(repaired->value, proposal->path);
    if (!dict)
        return dict.error();
    return FittedStateDict{std::move(dict).value(), std::move(proposal).value()};
}

} // namespace ifs::ckpt

#include "checkpoint/checkpointwriter.h"

#include <QDir>
#include <QFileInfo>
#include <QHash>
#include <QRandomGenerator>
#include <QSaveFile>
#include <QSet>
#include <QtConcurrent/QtConcurrentRun>
#include <QtEndian>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

namespace ifs::ckpt {

namespace {

// --- Pickle protocol 2 -------------------------------------------------------------------------

namespace op {
constexpr char kProto = '\x80';
constexpr char kStop = '.';
constexpr char kMark = '(';
constexpr char kNone = 'N';
constexpr char kNewTrue = '\x88';
constexpr char kNewFalse = '\x89';
constexpr char kBinInt = 'J';
constexpr char kBinInt1 = 'K';
constexpr char kBinInt2 = 'M';
constexpr char kLong1 = '\x8a';
constexpr char kBinFloat = 'G';
constexpr char kBinUnicode = 'X';
constexpr char kEmptyTuple = ')';
constexpr char kTuple = 't';
constexpr char kTuple1 = '\x85';
constexpr char kTuple2 = '\x86';
constexpr char kTuple3 = '\x87';
constexpr char kEmptyList = ']';
constexpr char kAppends = 'e';
constexpr char kEmptyDict = '}';
constexpr char kSetItems = 'u';
constexpr char kGlobal = 'c';
constexpr char kReduce = 'R';
constexpr char kBuild = 'b';
constexpr char kBinPersId = 'Q';
constexpr char kBinPut = 'q';
constexpr char kLongBinPut = 'r';
constexpr char kBinGet = 'h';
constexpr char kLongBinGet = 'j';
} // namespace op

// Deeper trees are a bug in the caller (or a hostile edit), not a checkpoint.
constexpr int kMaxDepth = 1000;

/// torch's location strings: "cpu", "cuda", "cuda:0", "privateuseone:1".

QString pythonRepr(const Value &key)
{
    switch (key.kind()) {
    case Value::Kind::String: {
        QString text = key.toString();
        text.replace(u'\\', QStringLiteral("\\\\")).replace(u'"', QStringLiteral("\\\""));
        return u'"' + text + u'"';
    }
    case Value::Kind::Int:
        return QString::number(key.toInt());
    case Value::Kind::Bool:
        return key.toBool() ? QStringLiteral("True") : QStringLiteral("False");
    case Value::Kind::Float:
        return QString::number(key.toDouble(), 'g', 17);
    case Value::Kind::None:
        return QStringLiteral("None");
    default:
        return u'<' + key.typeName() + u'>';
    }
}

/// The int a numeric key equals in Python (1 == 1.0 == True), if any.
std::optional<qint64> integralKey(const Value &key)
{
    if (key.isInt() || key.isBool())
        return key.toInt();
    if (!key.isFloat())
        return std::nullopt;
    const double x = key.toDouble();
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0) || std::trunc(x) != x)
        return std::nullopt;
    return qint64(x);
}

bool isHashable(const Value &key)
{
    switch (key.kind()) {
    case Value::Kind::List:
    case Value::Kind::Dict:
    case Value::Kind::OrderedDict:
        return false;
    case Value::Kind::Tuple:
        return std::all_of(key.items().begin(), key.items().end(), isHashable);
    default:
        return true;
    }
}

/// Turns a Value into the bytes of `data.pkl` and collects the storages in key order. Emits what
/// CPython's pickler emits for the same objects at protocol 2, with two differences on purpose:
/// a MARK before every non-empty list and dict (so SETITEMS/APPENDS, never SETITEM/APPEND, which
/// libtorch's unpickler lacks), and memo entries only for globals, a few constant strings and
/// storages (so a shared storage is one persistent id, fetched with BINGET afterwards).
class Pickler
{
public:
    explicit Pickler(const QString &location)
        : m_location(location)
    { }

    Status dump(const Value &root)
    {
        m_out.append(op::kProto).append('\x02');
        if (Status status = save(root); !status)
            return status;
        m_out.append(op::kStop);
        return success();
    }

    const QByteArray &bytes() const { return m_out; }
    const QList<StoragePtr> &storages() const { return m_storages; }

private:
    struct Step
    {
        const Value *key = nullptr; // a dict entry's key
        qsizetype index = -1; // a list or tuple item
        const char16_t *label = nullptr;
    };

    /// Runs `body` with one more step on the path shown in errors.
    template<typename Body>
    Status within(Step step, Body body)
    {
        m_path.append(step);
        Status status = body();
        m_path.removeLast();
        return status;
    }

    Status fail(const QString &reason) const
    {
        QString where = QStringLiteral("root");
        for (const Step &step : m_path) {
            if (step.key)
                where += u'[' + pythonRepr(*step.key) + u']';
            else if (step.index >= 0)
                where += u'[' + QString::number(step.index) + u']';
            else
                where += QString::fromUtf16(step.label);
        }
        return Error{where + u": " + reason};
    }

    Status save(const Value &value)
    {
        if (m_path.size() > kMaxDepth)
            return fail(QStringLiteral("values nested deeper than %1 levels").arg(kMaxDepth));
        switch (value.kind()) {
        case Value::Kind::None:
            m_out.append(op::kNone);
            return success();
        case Value::Kind::Bool:
            m_out.append(value.toBool() ? op::kNewTrue : op::kNewFalse);
            return success();
        case Value::Kind::Int:
            saveInt(value.toInt());
            return success();
        case Value::Kind::Float:
            saveFloat(value.toDouble());
            return success();
        case Value::Kind::String:
            saveString(value.toString().toUtf8());
            return success();
        case Value::Kind::Bytes:
            saveBytes(value.toBytes());
            return success();
        case Value::Kind::Tuple:
            return saveTuple(value.items());
        case Value::Kind::List:
            m_out.append(op::kEmptyList);
            return saveItems(value.items(), op::kAppends);
        case Value::Kind::Dict:
            m_out.append(op::kEmptyDict);
            return saveEntries(value.entries());
        case Value::Kind::OrderedDict:
            return saveOrderedDict(value);
        case Value::Kind::Tensor:
            return saveTensor(value.toTensor());
        case Value::Kind::Device:
            return saveDevice(value.toString());
        case Value::Kind::Size:
            saveGlobal("torch", "Size");
            saveIntTuple(value.toSize());
            m_out.append(op::kTuple1).append(op::kReduce);
            return success();
        case Value::Kind::DType:
            saveGlobal("torch", dtypeName(value.toDType()).toLatin1());
            return success();
        case Value::Kind::Object:
            return fail(QStringLiteral("an object of class %1 cannot be written: only plain "
                                       "values, tensors, torch.Size, torch.device and dtypes "
                                       "load with torch.load(weights_only=True)")
                            .arg(value.typeName()));
        }
        return fail(QStringLiteral("a value of unknown kind"));
    }

    void saveInt(qint64 value)
    {
        if (value >= 0 && value <= 0xff) {
            m_out.append(op::kBinInt1).append(char(value));
        } else if (value >= 0 && value <= 0xffff) {
            m_out.append(op::kBinInt2);
            appendLittle<quint16>(quint16(value));
        } else if (value >= -0x80000000LL && value <= 0x7fffffffLL) {
            m_out.append(op::kBinInt);
            appendLittle<qint32>(qint32(value));
        } else {
            // LONG1: the shortest two's complement little-endian bytes, as CPython's encode_long.
            char bytes[8];
            qToLittleEndian<qint64>(value, bytes);
            int count = 8;
            while (count > 1) {
                const char top = bytes[count - 1];
                const bool nextNegative = (bytes[count - 2] & 0x80) != 0;
                if ((top == 0 && !nextNegative) || (top == char(0xff) && nextNegative))
                    --count;
                else
                    break;
            }
            m_out.append(op::kLong1).append(char(count)).append(bytes, count);
        }
    }

    void saveFloat(double value)
    {
        m_out.append(op::kBinFloat);
        char bytes[8];
        qToBigEndian<double>(value, bytes);
        m_out.append(bytes, 8);
    }

    void saveString(const QByteArray &utf8)
    {
        m_out.append(op::kBinUnicode);
        appendLittle<quint32>(quint32(utf8.size()));
        m_out.append(utf8);
    }

    /// A string that recurs in every tensor ("storage", "cpu"): written once, then BINGET.
    void saveMemoizedString(const QString &text)
    {
        if (const auto it = m_stringMemo.constFind(text); it != m_stringMemo.cend()) {
            get(*it);
            return;
        }
        saveString(text.toUtf8());
        m_stringMemo.insert(text, put());
    }

    /// Python 3 pickles bytes at protocol 2 as `_codecs.encode(latin-1 text, 'latin1')`;
    /// torch's weights-only unpickler allows exactly that (it has no BINBYTES).
    void saveBytes(const QByteArray &data)
    {
        saveGlobal("_codecs", "encode");
        QByteArray utf8;
        utf8.reserve(data.size() * 2);
        for (const char c : data) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte < 0x80) {
                utf8.append(char(byte));
            } else {
                utf8.append(char(0xc0 | (byte >> 6)));
                utf8.append(char(0x80 | (byte & 0x3f)));
            }
        }
        saveString(utf8);
        saveMemoizedString(QStringLiteral("latin1"));
        m_out.append(op::kTuple2).append(op::kReduce);
    }

    void saveGlobal(const QByteArray &module, const QByteArray &name)
    {
        const QByteArray key = module + '\n' + name;
        if (const auto it = m_globalMemo.constFind(key); it != m_globalMemo.cend()) {
            get(*it);
            return;
        }
        m_out.append(op::kGlobal).append(key).append('\n');
        m_globalMemo.insert(key, put());
    }

    void saveIntTuple(const QList<qint64> &values)
    {
        QList<Value> items;
        items.reserve(values.size());
        for (const qint64 v : values)
            items.append(Value::fromInt(v));
        (void)saveTuple(items); // ints cannot fail
    }

    Status saveTuple(const QList<Value> &items)
    {
        if (items.isEmpty()) {
            m_out.append(op::kEmptyTuple);
            return success();
        }
        if (items.size() > 3)
            m_out.append(op::kMark);
        for (qsizetype i = 0; i < items.size(); ++i) {
            Status status = within({nullptr, i, nullptr}, [&] { return save(items[i]); });
            if (!status)
                return status;
        }
        static constexpr char kSmallTuple[] = {0, op::kTuple1, op::kTuple2, op::kTuple3};
        m_out.append(items.size() <= 3 ? kSmallTuple[items.size()] : op::kTuple);
        return success();
    }

    Status saveItems(const QList<Value> &items, char closing)
    {
        if (items.isEmpty())
            return success();
        m_out.append(op::kMark);
        for (qsizetype i = 0; i < items.size(); ++i) {
            Status status = within({nullptr, i, nullptr}, [&] { return save(items[i]); });
            if (!status)
                return status;
        }
        m_out.append(closing);
        return success();
    }

    Status saveEntries(const Value::Entries &entries)
    {
        if (entries.isEmpty())
            return success();
        // Python keeps one entry per key: a duplicate would silently lose a value.
        QSet<QString> strings;
        QSet<qint64> integers;
        m_out.append(op::kMark);
        for (const Value::Entry &entry : entries) {
            const Value &key = entry.first;
            Status status = within({&key, -1, nullptr}, [&]() -> Status {
                if (!isHashable(key)) {
                    return fail(QStringLiteral("a %1 cannot be a dict key (it is unhashable)")
                                    .arg(key.typeName()));
                }
                bool duplicate = false;
                if (key.isString()) {
                    const qsizetype before = strings.size();
                    strings.insert(key.toString());
                    duplicate = strings.size() == before;
                } else if (const std::optional<qint64> number = integralKey(key)) {
                    const qsizetype before = integers.size();
                    integers.insert(*number);
                    duplicate = integers.size() == before;
                }
                if (duplicate)
                    return fail(QStringLiteral("the key appears twice in the dict"));
                if (Status saved = save(key); !saved)
                    return saved;
                return save(entry.second);
            });
            if (!status)
                return status;
        }
        m_out.append(op::kSetItems);
        return success();
    }

    Status saveOrderedDict(const Value &value)
    {
        saveGlobal("collections", "OrderedDict");
        m_out.append(op::kEmptyTuple).append(op::kReduce);
        if (Status status = saveEntries(value.entries()); !status)
            return status;
        const Value state = value.state();
        if (state.isNone())
            return success();
        return within({nullptr, -1, u".__dict__"}, [&]() -> Status {
            if (!state.isDict()) {
                return fail(QStringLiteral("an OrderedDict's attributes must be a dict, not a %1")
                                .arg(state.typeName()));
            }
            if (Status saved = save(state); !saved)
                return saved;
            m_out.append(op::kBuild);
            return success();
        });
    }

    Status saveDevice(const QString &device)
    {
        if (!isDeviceString(device)) {
            return fail(
                QStringLiteral("“%1” is not a device such as “cpu” or “cuda:0”").arg(device));
        }
        // torch.device pickles as torch.device('cuda', 0), or torch.device('cpu') without index.
        saveGlobal("torch", "device");
        const qsizetype colon = device.indexOf(u':');
        saveString(device.left(colon).toUtf8());
        if (colon < 0) {
            m_out.append(op::kTuple1);
        } else {
            saveInt(device.mid(colon + 1).toLongLong());
            m_out.append(op::kTuple2);
        }
        m_out.append(op::kReduce);
        return success();
    }

    Status saveTensor(const Tensor &tensor)
    {
        if (Status layout = tensor.checkLayout(); !layout)
            return fail(layout.errorMessage());
        const Storage &storage = *tensor.storage;
        const QString location = m_location.isEmpty() ? storage.device : m_location;
        if (!isDeviceString(location)) {
            return fail(QStringLiteral("its storage's device “%1” is not a device such as “cpu” "
                                       "or “cuda:0”")
                            .arg(location));
        }

        // Parameter: _rebuild_parameter(_rebuild_tensor_v2(...), requires_grad, OrderedDict())
        if (tensor.parameter)
            saveGlobal("torch._utils", "_rebuild_parameter");
        saveGlobal("torch._utils", "_rebuild_tensor_v2");
        m_out.append(op::kMark);
        savePersistentId(tensor.storage, location);
        saveInt(tensor.offset);
        saveIntTuple(tensor.shape);
        saveIntTuple(tensor.stride);
        m_out.append(tensor.requiresGrad && !tensor.parameter ? op::kNewTrue : op::kNewFalse);
        saveEmptyOrderedDict(); // backward hooks
        m_out.append(op::kTuple).append(op::kReduce);
        if (tensor.parameter) {
            m_out.append(tensor.requiresGrad ? op::kNewTrue : op::kNewFalse);
            saveEmptyOrderedDict();
            m_out.append(op::kTuple3).append(op::kReduce);
        }
        return success();
    }

    void saveEmptyOrderedDict()
    {
        saveGlobal("collections", "OrderedDict");
        m_out.append(op::kEmptyTuple).append(op::kReduce);
    }

    /// ('storage', torch.FloatStorage, key, location, numel), loaded by torch's persistent_load.
    void savePersistentId(const StoragePtr &storage, const QString &location)
    {
        if (const auto it = m_storageMemo.constFind(storage.get()); it != m_storageMemo.cend()) {
            get(*it);
            return;
        }
        const QString key = QString::number(m_storages.size());
        m_storages.append(storage);
        m_out.append(op::kMark);
        saveMemoizedString(QStringLiteral("storage"));
        saveGlobal("torch", storageClassName(storage->dtype).toLatin1());
        saveString(key.toUtf8());
        saveMemoizedString(location);
        saveInt(storage->numel());
        m_out.append(op::kTuple).append(op::kBinPersId);
        m_storageMemo.insert(storage.get(), put());
    }

    /// Memoizes the top of the stack; returns its index.
    quint32 put()
    {
        const quint32 index = m_nextMemo++;
        if (index < 256) {
            m_out.append(op::kBinPut).append(char(index));
        } else {
            m_out.append(op::kLongBinPut);
            appendLittle<quint32>(index);
        }
        return index;
    }

    void get(quint32 index)
    {
        if (index < 256) {
            m_out.append(op::kBinGet).append(char(index));
        } else {
            m_out.append(op::kLongBinGet);
            appendLittle<quint32>(index);
        }
    }

    template<typename T>
    void appendLittle(T value)
    {
        char bytes[sizeof(T)];
        qToLittleEndian<T>(value, bytes);
        m_out.append(bytes, sizeof(T));
    }

    QString m_location;
    QByteArray m_out;
    QList<StoragePtr> m_storages;
    QHash<const Storage *, quint32> m_storageMemo;
    QHash<QByteArray, quint32> m_globalMemo;
    QHash<QString, quint32> m_stringMemo;
    quint32 m_nextMemo = 0;
    QList<Step> m_path;
};

// --- Zip container, as PyTorchStreamWriter writes it ---------------------------------------------

constexpr quint64 kAlignment = 64; // caffe2::serialize::kFieldAlignment
constexpr qint64 kParallelCrc = 1 << 20; // records from this size: CRC on a pool thread
constexpr quint32 kMax32 = 0xffffffffu;
constexpr quint16 kMax16 = 0xffffu;
constexpr quint16 kDosTime = 0; // fixed, so that equal inputs give equal files
constexpr quint16 kDosDate = (1 << 5) | 1; // 1980-01-01
constexpr quint16 kUtf8Names = 1 << 11;

class ByteWriter
{
public:
    QByteArray bytes;
    void u16(quint16 v) { little(v); }
    void u32(quint32 v) { little(v); }
    void u64(quint64 v) { little(v); }

private:
    template<typename T>
    void little(T value)
    {
        char data[sizeof(T)];
        qToLittleEndian<T>(value, data);
        bytes.append(data, sizeof(T));
    }
};

/// Writes stored (uncompressed) records with their data 64-byte aligned, a central directory,
/// and ZIP64 structures where sizes or offsets need them.
class ZipWriter
{
public:
    ZipWriter(QFileDevice &out, bool forceZip64)
        : m_out(out)
        , m_force(forceZip64)
    { }

    bool addRecord(const QByteArray &name, const char *data, qint64 size)
    {
        const quint64 offset = m_pos;
        const bool zip64 = m_force || quint64(size) >= kMax32;

        ByteWriter extra;
        if (zip64) {
            extra.u16(0x0001);
            extra.u16(16);
            extra.u64(quint64(size));
            extra.u64(quint64(size));
        }
        // The "FB" field pads the header so that the data starts at a multiple of 64.
        const quint64 dataStart
            = offset + 30 + quint64(name.size()) + quint64(extra.bytes.size()) + 4;
        const quint16 padding = quint16((kAlignment - dataStart % kAlignment) % kAlignment);
        extra.bytes.append("FB", 2);
        extra.u16(padding);
        extra.bytes.append(QByteArray(padding, 'Z'));

        ByteWriter header;
        header.u32(0x04034b50);
        header.u16(zip64 ? 45 : 20);
        header.u16(kUtf8Names);
        header.u16(0); // stored
        header.u16(kDosTime);
        header.u16(kDosDate);
        header.u32(0); // CRC-32, set once the data is written
        header.u32(zip64 ? kMax32 : quint32(size));
        header.u32(zip64 ? kMax32 : quint32(size));
        header.u16(quint16(name.size()));
        header.u16(quint16(extra.bytes.size()));
        header.bytes.append(name).append(extra.bytes);
        if (!write(header.bytes.constData(), header.bytes.size()))
            return false;

        quint32 crc = 0;
        if (!writeData(data, size, &crc))
            return false;
        char crcBytes[4];
        qToLittleEndian<quint32>(crc, crcBytes);
        if (!m_out.seek(qint64(offset) + 14) || m_out.write(crcBytes, 4) != 4
            || !m_out.seek(qint64(m_pos)))
            return false;
        m_entries.append({name, crc, quint64(size), offset});
        return true;
    }

    bool finish()
    {
        const quint64 directoryOffset = m_pos;
        ByteWriter directory;
        for (const Entry &entry : m_entries) {
            const bool bigSize = m_force || entry.size >= kMax32;
            const bool bigOffset = m_force || entry.offset >= kMax32;
            ByteWriter extra;
            if (bigSize || bigOffset) {
                extra.u16(0x0001);
                extra.u16(quint16((bigSize ? 16 : 0) + (bigOffset ? 8 : 0)));
                if (bigSize) {
                    extra.u64(entry.size);
                    extra.u64(entry.size);
                }
                if (bigOffset)
                    extra.u64(entry.offset);
            }
            const quint16 version = bigSize || bigOffset ? 45 : 20;
            directory.u32(0x02014b50);
            directory.u16(version); // made by (MS-DOS attributes)
            directory.u16(version); // needed
            directory.u16(kUtf8Names);
            directory.u16(0);
            directory.u16(kDosTime);
            directory.u16(kDosDate);
            directory.u32(entry.crc);
            directory.u32(bigSize ? kMax32 : quint32(entry.size));
            directory.u32(bigSize ? kMax32 : quint32(entry.size));
            directory.u16(quint16(entry.name.size()));
            directory.u16(quint16(extra.bytes.size()));
            directory.u16(0); // comment
            directory.u16(0); // disk
            directory.u16(0); // internal attributes
            directory.u32(0); // external attributes
            directory.u32(bigOffset ? kMax32 : quint32(entry.offset));
            directory.bytes.append(entry.name).append(extra.bytes);
        }
        const quint64 directorySize = quint64(directory.bytes.size());
        const quint64 count = quint64(m_entries.size());
        if (!write(directory.bytes.constData(), directory.bytes.size()))
            return false;

        ByteWriter end;
        const bool zip64
            = m_force || count >= kMax16 || directorySize >= kMax32 || directoryOffset >= kMax32;
        if (zip64) {
            const quint64 recordOffset = m_pos;
            end.u32(0x06064b50);
            end.u64(44); // size of the rest of this record
            end.u16(45);
            end.u16(45);
            end.u32(0);
            end.u32(0);
            end.u64(count);
            end.u64(count);
            end.u64(directorySize);
            end.u64(directoryOffset);
            end.u32(0x07064b50); // locator
            end.u32(0);
            end.u64(recordOffset);
            end.u32(1);
        }
        const auto field16 = [&](quint64 v) {
            return m_force || v >= kMax16 ? kMax16 : quint16(v);
        };
        const auto field32 = [&](quint64 v) {
            return m_force || v >= kMax32 ? kMax32 : quint32(v);
        };
        end.u32(0x06054b50);
        end.u16(0);
        end.u16(0);
        end.u16(field16(count));
        end.u16(field16(count));
        end.u32(field32(directorySize));
        end.u32(field32(directoryOffset));
        end.u16(0); // comment
        return write(end.bytes.constData(), end.bytes.size());
    }

private:
    struct Entry
    {
        QByteArray name;
        quint32 crc;
        quint64 size;
        quint64 offset;
    };

    static quint32 crc32Of(const char *data, qint64 size)
    {
        const uLong empty = crc32_z(0L, Z_NULL, 0);
        return quint32(crc32_z(empty, reinterpret_cast<const Bytef *>(data), z_size_t(size)));
    }

    /// Writes a record's data and computes its CRC-32. Large records get their CRC from a pool
    /// thread while the data goes to the file (both only read the data); zlib's CRC runs at about
    /// the speed of a write to the page cache, so this hides most of it when a core is free.
    bool writeData(const char *data, qint64 size, quint32 *crc)
    {
        if (size < kParallelCrc) {
            *crc = crc32Of(data, size);
            return write(data, size);
        }
        // A task still queued when result() is called runs on this thread: no deadlock when the
        // pool is busy.
        QFuture<quint32> pending = QtConcurrent::run(crc32Of, data, size);
        const bool written = write(data, size);
        *crc = pending.result();
        return written;
    }

    bool write(const char *data, qint64 size)
    {
        while (size > 0) {
            const qint64 written = m_out.write(data, size);
            if (written <= 0)
                return false;
            data += written;
            size -= written;
            m_pos += quint64(written);
        }
        return true;
    }

    QFileDevice &m_out;
    bool m_force;
    quint64 m_pos = 0;
    QList<Entry> m_entries;
};

QString archiveFolder(const QString &path, const WriteOptions &options)
{
    if (!options.archiveName.isEmpty())
        return options.archiveName;
    const QString stem = QFileInfo(path).baseName(); // up to the first dot, as torch 1.13
    return stem.isEmpty() ? QStringLiteral("archive") : stem;
}

bool isArchiveFolder(const QString &name)
{
    if (name.isEmpty() || name == u"." || name == u".." || name.toUtf8().size() > 1000)
        return false;
    return std::none_of(name.begin(), name.end(), [](QChar c) {
        return c == u'/' || c == u'\\' || c.category() == QChar::Other_Control;
    });
}

} // namespace

bool isDeviceString(QStringView device)
{
    const qsizetype colon = device.indexOf(u':');
    const QStringView type = colon < 0 ? device : device.left(colon);
    if (type.isEmpty() || !(type[0].isLower() || type[0] == u'_'))
        return false;
    for (const QChar c : type) {
        if (!((c >= u'a' && c <= u'z') || (c >= u'0' && c <= u'9') || c == u'_'))
            return false;
    }
    if (colon < 0)
        return true;
    const QStringView index = device.mid(colon + 1);
    if (index.isEmpty() || index.size() > 9)
        return false;
    return std::all_of(index.begin(), index.end(), [](QChar c) { return c >= u'0' && c <= u'9'; });
}

Status writeCheckpoint(const QString &path, const Value &root, const WriteOptions &options)
{
    const auto failure = [&](const QString &reason) {
        return Error{QStringLiteral("Cannot write checkpoint “%1”: %2")
                         .arg(QDir::toNativeSeparators(path), reason)};
    };

    const QString folder = archiveFolder(path, options);
    if (!isArchiveFolder(folder))
        return failure(QStringLiteral("“%1” cannot name the archive folder").arg(folder));
    if (!options.device.isEmpty() && !isDeviceString(options.device)) {
        return failure(
            QStringLiteral("“%1” is not a device such as “cpu” or “cuda:0”").arg(options.device));
    }

    // Everything is checked while pickling, before the file is touched.
    Pickler pickler(options.device);
    if (Status status = pickler.dump(root); !status)
        return failure(status.errorMessage());

    // Durable: QSaveFile (temporary file, fdatasync, rename). Otherwise a temporary file of our
    // own beside the target, renamed into place without waiting for the disk.
    QSaveFile durableFile(path);
    QFile quickFile;
    QFileDevice *device = &durableFile;
    if (!options.durable) {
        const QString temporary = QStringLiteral("%1.part-%2")
                                      .arg(path)
                                      .arg(QRandomGenerator::global()->generate64(), 0, 36);
        quickFile.setFileName(temporary);
        device = &quickFile;
    }
    if (!device->open(QIODevice::WriteOnly | QIODevice::Unbuffered
                      | (options.durable ? QIODevice::OpenModeFlag(0) : QIODevice::NewOnly)))
        return failure(device->errorString());
    const auto abandon = [&]() {
        if (options.durable)
            durableFile.cancelWriting();
        else {
            quickFile.close();
            quickFile.remove();
        }
    };
    const QByteArray prefix = folder.toUtf8() + '/';
    ZipWriter zip(*device, options.forceZip64);
    const auto add = [&](const QByteArray &name, const QByteArray &data) {
        return zip.addRecord(prefix + name, data.constData(), data.size());
    };

    bool ok = add("data.pkl", pickler.bytes()) && add("byteorder", "little");
    const QList<StoragePtr> &storages = pickler.storages();
    for (qsizetype key = 0; ok && key < storages.size(); ++key) {
        // A storage left in its file (an on-demand read) is read now; it may fail.
        const Result<QByteArray> data = storages[key]->data();
        if (!data) {
            abandon();
            return failure(data.errorMessage());
        }
        ok = add("data/" + QByteArray::number(key), data.value());
    }
    ok = ok && add("version", "3\n") && zip.finish();
    if (!ok) {
        const QString reason = device->errorString();
        abandon();
        return failure(reason);
    }
    if (options.durable) {
        if (!durableFile.commit())
            return failure(durableFile.errorString());
        return success();
    }
    quickFile.close();
    if (quickFile.error() != QFileDevice::NoError) {
        const QString reason = quickFile.errorString();
        quickFile.remove();
        return failure(reason);
    }
    // rename(2) replaces the target atomically; QFile::rename would refuse an existing one.
    if (std::rename(QFile::encodeName(quickFile.fileName()).constData(),
                    QFile::encodeName(path).constData())
        != 0) {
        const QString reason = QString::fromLocal8Bit(std::strerror(errno));
        quickFile.remove();
        return failure(reason);
    }
    return success();
}

} // namespace ifs::ckpt

#include "checkpoint/detail/zipreader.h"

#include <QThreadPool>
#include <QtConcurrent/QtConcurrentMap>
#include <QtEndian>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

namespace ifs::ckpt::detail {

namespace {

constexpr quint32 kLocalHeader = 0x04034b50;
constexpr quint32 kCentralHeader = 0x02014b50;
constexpr quint32 kEndOfDirectory = 0x06054b50;
constexpr quint32 kZip64EndOfDirectory = 0x06064b50;
constexpr quint32 kZip64Locator = 0x07064b50;
constexpr qint64 kEndOfDirectorySize = 22;
constexpr qint64 kCentralHeaderSize = 46;
constexpr qint64 kLocalHeaderSize = 30;

QString truncatedMessage()
{
    return QStringLiteral("the file ends early: it was probably not fully written or downloaded");
}

/// Bounds-checked little-endian reads from a window of the source: bytes [begin, begin + size)
/// at `data`, addressed by their offsets in the source.
class Window
{
public:
    Window() = default;
    Window(const char *data, qint64 begin, qint64 size)
        : m_data(data)
        , m_begin(begin)
        , m_size(size)
    { }

    bool has(qint64 offset, qint64 length) const
    {
        return offset >= m_begin && length >= 0 && offset - m_begin <= m_size
            && length <= m_size - (offset - m_begin);
    }
    quint16 u16(qint64 offset) const { return qFromLittleEndian<quint16>(at(offset)); }
    quint32 u32(qint64 offset) const { return qFromLittleEndian<quint32>(at(offset)); }
    quint64 u64(qint64 offset) const { return qFromLittleEndian<quint64>(at(offset)); }
    const char *at(qint64 offset) const { return m_data + (offset - m_begin); }

private:
    const char *m_data = nullptr;
    qint64 m_begin = 0;
    qint64 m_size = 0;
};

/// A window onto [begin, begin + length) of the source: the buffer itself, or the bytes read
/// into `storage`. The range must lie inside the source.
Result<Window> windowOf(const ByteSource &source, qint64 begin, qint64 length, QByteArray &storage)
{
    if (const char *memory = source.memory())
        return Window(memory + begin, begin, length);
    Result<QByteArray> bytes = source.read(begin, length);
    if (!bytes)
        return bytes.error();
    storage = std::move(bytes).value();
    return Window(storage.constData(), begin, length);
}

bool inside(qint64 size, qint64 offset, qint64 length)
{
    return offset >= 0 && length >= 0 && offset <= size && length <= size - offset;
}

} // namespace

quint32 crc32Of(const char *data, qint64 size)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    return quint32(crc32_z(crc, reinterpret_cast<const Bytef *>(data), z_size_t(size)));
}

const ZipRecord *firstCrcMismatch(const std::vector<PendingCrc> &records,
                                  const std::atomic_bool *cancel)
{
    struct Piece
    {
        size_t record;
        qint64 offset;
        qint64 length;
        quint32 crc;
    };
    constexpr qint64 kPiece = qint64(8) << 20;
    std::vector<Piece> pieces;
    qint64 total = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        const qint64 size = records[i].record->size;
        total += size;
        for (qint64 offset = 0; offset < size || offset == 0; offset += kPiece) {
            pieces.push_back({i, offset, std::min(kPiece, size - offset), 0});
            if (size == 0)
                break;
        }
    }
    const auto compute = [&](Piece &piece) {
        if (cancel && cancel->load())
            return;
        piece.crc = crc32Of(records[piece.record].data + piece.offset, piece.length);
    };
    if (total >= 4 * kPiece && QThreadPool::globalInstance()->maxThreadCount() > 1)
        QtConcurrent::blockingMap(pieces, compute);
    else
        std::for_each(pieces.begin(), pieces.end(), compute);
    if (cancel && cancel->load())
        return nullptr;
    // Pieces are in record order: combine each record's pieces in turn.
    size_t at = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        uLong crc = pieces[at].crc;
        for (++at; at < pieces.size() && pieces[at].record == i; ++at)
            crc = crc32_combine64(crc, pieces[at].crc, z_off64_t(pieces[at].length));
        if (quint32(crc) != records[i].record->crc)
            return records[i].record;
    }
    return nullptr;
}

namespace {

/// Where the end-of-directory record says the central directory lies.
struct DirectoryPlace
{
    qint64 entryCount = 0;
    qint64 offset = 0;
    qint64 size = 0;
    qint64 end = 0; ///< where the end-of-directory record starts
};

Result<DirectoryPlace> findDirectory(const ByteSource &source)
{
    const qint64 size = source.size();
    char first[4] = {};
    const bool localFirst = size >= 4 && source.read(0, first, 4).ok()
        && qFromLittleEndian<quint32>(first) == kLocalHeader;
    if (size < kEndOfDirectorySize)
        return Error{localFirst ? truncatedMessage() : QStringLiteral("not a zip file")};

    // The end-of-directory record sits at the very end, before a comment of up to 64 KiB; a
    // ZIP64 locator comes just before it.
    const qint64 lowest = std::max<qint64>(0, size - kEndOfDirectorySize - 0xFFFF);
    const qint64 tailStart = std::max<qint64>(0, lowest - 20);
    QByteArray tailStorage;
    Result<Window> tailWindow = windowOf(source, tailStart, size - tailStart, tailStorage);
    if (!tailWindow)
        return tailWindow.error();
    const Window &tail = tailWindow.value();
    DirectoryPlace place;
    place.end = -1;
    for (qint64 at = size - kEndOfDirectorySize; at >= lowest; --at) {
        if (tail.u32(at) == kEndOfDirectory
            && at + kEndOfDirectorySize + tail.u16(at + 20) <= size) {
            place.end = at;
            break;
        }
    }
    if (place.end < 0) {
        if (localFirst)
            return Error{truncatedMessage() + u" (the zip's directory at its end is missing)"};
        return Error{QStringLiteral("not a zip file (no end-of-archive record)")};
    }
    const qint64 end = place.end;
    place.entryCount = tail.u16(end + 10);
    place.size = tail.u32(end + 12);
    place.offset = tail.u32(end + 16);
    if (tail.u16(end + 4) != 0 || tail.u16(end + 6) != 0)
        return Error{QStringLiteral("split or multi-volume zip archives are not supported")};

    if (end >= 20 && tail.u32(end - 20) == kZip64Locator) {
        const quint64 zip64End = tail.u64(end - 20 + 8);
        const QString damaged = QStringLiteral("the zip's ZIP64 end-of-archive record is damaged");
        if (zip64End > quint64(size) || !inside(size, qint64(zip64End), 56))
            return Error{damaged};
        char record[56];
        if (Status status = source.read(qint64(zip64End), record, 56); !status)
            return status.error();
        const Window zip64(record, qint64(zip64End), 56);
        if (zip64.u32(qint64(zip64End)) != kZip64EndOfDirectory)
            return Error{damaged};
        const quint64 count = zip64.u64(qint64(zip64End) + 32);
        const quint64 length = zip64.u64(qint64(zip64End) + 40);
        const quint64 offset = zip64.u64(qint64(zip64End) + 48);
        if (count > quint64(size) || length > quint64(size) || offset > quint64(size))
            return Error{damaged};
        place.entryCount = qint64(count);
        place.size = qint64(length);
        place.offset = qint64(offset);
    }
    if (!inside(size, place.offset, place.size) || place.offset + place.size > end) {
        return Error{QStringLiteral("the zip's central directory lies outside the file (it is "
                                    "damaged or the file was cut)")};
    }
    if (place.entryCount > place.size / kCentralHeaderSize)
        return Error{QStringLiteral("the zip's central directory is damaged (%1 entries claimed "
                                    "in %2 bytes)")
                         .arg(place.entryCount)
                         .arg(place.size)};
    return place;
}

/// The 64-bit values of a ZIP64 extra field for the fields that hold 0xFFFFFFFF, in order.
bool readZip64Extra(const Window &bytes, qint64 extra, qint64 extraEnd, ZipRecord *record)
{
    while (extra + 4 <= extraEnd) {
        const quint16 id = bytes.u16(extra);
        const qint64 length = bytes.u16(extra + 2);
        if (extra + 4 + length > extraEnd)
            break;
        if (id == 0x0001) {
            qint64 field = extra + 4;
            const auto take = [&](qint64 *value) {
                if (*value != 0xFFFFFFFF)
                    return true;
                if (field + 8 > extra + 4 + length)
                    return false;
                const quint64 wide = bytes.u64(field);
                field += 8;
                if (wide > quint64(std::numeric_limits<qint64>::max()))
                    return false;
                *value = qint64(wide);
                return true;
            };
            if (!take(&record->size) || !take(&record->compressedSize)
                || !take(&record->localHeaderOffset)) {
                return false;
            }
        }
        extra += 4 + length;
    }
    return true;
}

/// Checks a record's method and local header, and finds where its data starts.
Status locateData(const ByteSource &source, ZipRecord *record)
{
    if (record->method != 0 && record->method != 8) {
        return Error{QStringLiteral("record “%1” uses compression method %2; only stored and "
                                    "deflated records are supported")
                         .arg(record->name)
                         .arg(record->method)};
    }
    const qint64 local = record->localHeaderOffset;
    char header[kLocalHeaderSize];
    if (!inside(source.size(), local, kLocalHeaderSize)
        || !source.read(local, header, kLocalHeaderSize).ok()
        || qFromLittleEndian<quint32>(header) != kLocalHeader) {
        return Error{QStringLiteral("the local header of record “%1” is missing or damaged")
                         .arg(record->name)};
    }
    const Window bytes(header, local, kLocalHeaderSize);
    record->dataOffset = local + kLocalHeaderSize + bytes.u16(local + 26) + bytes.u16(local + 28);
    if (!inside(source.size(), record->dataOffset, record->compressedSize)) {
        return Error{truncatedMessage()
                     + QStringLiteral(" (record “%1” reaches past the end)").arg(record->name)};
    }
    if (record->method == 0 && record->compressedSize != record->size) {
        return Error{QStringLiteral("record “%1” is stored but its sizes differ (%2 and %3 "
                                    "bytes)")
                         .arg(record->name)
                         .arg(record->compressedSize)
                         .arg(record->size)};
    }
    return success();
}

} // namespace

Result<ZipReader> ZipReader::open(std::shared_ptr<const ByteSource> source)
{
    Result<DirectoryPlace> found = findDirectory(*source);
    if (!found)
        return found.error();
    const DirectoryPlace &place = found.value();
    QByteArray directoryStorage;
    Result<Window> directory = windowOf(*source, place.offset, place.size, directoryStorage);
    if (!directory)
        return directory.error();
    const Window &bytes = directory.value();

    ZipReader reader;
    reader.m_records.reserve(place.entryCount);
    reader.m_index.reserve(place.entryCount);
    const qint64 directoryEnd = place.offset + place.size;
    qint64 at = place.offset;
    for (qint64 i = 0; i < place.entryCount; ++i) {
        if (!bytes.has(at, kCentralHeaderSize) || at + kCentralHeaderSize > directoryEnd
            || bytes.u32(at) != kCentralHeader) {
            return Error{
                QStringLiteral("the zip's central directory is damaged (entry %1)").arg(i + 1)};
        }
        const quint16 flags = bytes.u16(at + 8);
        ZipRecord record;
        record.method = bytes.u16(at + 10);
        record.crc = bytes.u32(at + 16);
        record.compressedSize = bytes.u32(at + 20);
        record.size = bytes.u32(at + 24);
        const qint64 nameLength = bytes.u16(at + 28);
        const qint64 extraLength = bytes.u16(at + 30);
        const qint64 commentLength = bytes.u16(at + 32);
        record.localHeaderOffset = bytes.u32(at + 42);
        const qint64 next = at + kCentralHeaderSize + nameLength + extraLength + commentLength;
        if (next > directoryEnd) {
            return Error{
                QStringLiteral("the zip's central directory is damaged (entry %1)").arg(i + 1)};
        }
        record.name = QString::fromUtf8(bytes.at(at + kCentralHeaderSize), nameLength);
        const qint64 extra = at + kCentralHeaderSize + nameLength;
        if (!readZip64Extra(bytes, extra, extra + extraLength, &record)) {
            return Error{
                QStringLiteral("the ZIP64 sizes of record “%1” are damaged").arg(record.name)};
        }
        if (flags & 0x0001)
            return Error{QStringLiteral("record “%1” is encrypted").arg(record.name)};
        if (Status status = locateData(*source, &record); !status)
            return status.error();
        if (reader.m_index.contains(record.name))
            return Error{QStringLiteral("the zip holds two records named “%1”").arg(record.name)};
        reader.m_index.insert(record.name, reader.m_records.size());
        reader.m_records.append(std::move(record));
        at = next;
    }
    reader.m_source = std::move(source);
    return reader;
}

const ZipRecord *ZipReader::find(const QString &name) const
{
    const auto it = m_index.constFind(name);
    return it == m_index.constEnd() ? nullptr : &m_records[*it];
}

RecordRange ZipReader::range(const ZipRecord &record, bool verifyCrc)
{
    RecordRange range;
    range.name = record.name;
    range.offset = record.dataOffset;
    range.compressedSize = record.compressedSize;
    range.size = record.size;
    range.method = record.method;
    if (verifyCrc)
        range.crc = record.crc;
    return range;
}

Result<QByteArray> ZipReader::read(const ZipRecord &record, bool verifyCrc, qint64 maxSize) const
{
    if (record.size > maxSize) {
        return Error{QStringLiteral("record “%1” claims %2 bytes, more than the %3 allowed")
                         .arg(record.name)
                         .arg(record.size)
                         .arg(maxSize)};
    }
    const RecordRange where = range(record, verifyCrc);
    if (record.method == 0 && m_source->memory()) {
        const char *data = m_source->memory() + record.dataOffset;
        if (verifyCrc && crc32Of(data, record.size) != record.crc) {
            return Error{
                QStringLiteral("record “%1” is damaged (its CRC-32 checksum does not match)")
                    .arg(record.name)};
        }
        return QByteArray::fromRawData(data, qsizetype(record.size));
    }
    if (record.method != 0) {
        if (const QString refused = refusedInflation(where); !refused.isEmpty())
            return Error{refused};
    }
    QByteArray out;
    try {
        out = QByteArray(qsizetype(record.size), Qt::Uninitialized);
    } catch (const std::bad_alloc &) {
        return Error{QStringLiteral("not enough memory for the %1 of record “%2”")
                         .arg(byteCountText(record.size), record.name),
                     ErrorCode::OutOfMemory};
    }
    qint64 at = 0;
    const Status status
        = streamRecord(*m_source, where, 0, record.size, [&](const char *data, qint64 size) {
              std::memcpy(out.data() + at, data, size_t(size));
              at += size;
              return true;
          });
    if (!status)
        return status.error();
    return out;
}

} // namespace ifs::ckpt::detail

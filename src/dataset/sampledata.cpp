#include "dataset/sampledata.h"

#include "base/logging.h"
#include "base/version.h"

#include <QDateTime>
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMutex>
#include <QSaveFile>
#include <QTemporaryDir>
#include <QThread>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

#ifdef Q_OS_UNIX
#include <fcntl.h>
#include <unistd.h>
#endif

namespace ifs {

namespace {

constexpr quint32 kImagesMagic = 0x00000803;
constexpr quint32 kLabelsMagic = 0x00000801;
constexpr int kClassCount = 10;
// Sanity caps: the header is not trusted. Buffers grow with what the file really holds, and no
// header can make us read (or allocate) more than a million 28×28 images.
constexpr int64_t kMaxItems = 1000000;
constexpr int64_t kMaxPixelBytes = kMaxItems * 28 * 28;
constexpr int kMaxSide = 4096;
constexpr int64_t kReadChunk = 16 << 20;
constexpr int kProgressEvery = 256;
constexpr int kMarkerVersion = 1;

const char16_t kTrainImages[] = u"train-images-idx3-ubyte";
const char16_t kTrainLabels[] = u"train-labels-idx1-ubyte";
const char16_t kValImages[] = u"t10k-images-idx3-ubyte";
const char16_t kValLabels[] = u"t10k-labels-idx1-ubyte";

QString nativePath(const QString &path)
{
    return QDir::toNativeSeparators(path);
}

QString quoted(const QString &path)
{
    return u"“" + nativePath(path) + u"”";
}

QString absoluteClean(const QString &path)
{
    return QDir::cleanPath(QFileInfo(path).absoluteFilePath());
}

/// Compares folders by what they point to when they exist, so that symlinks and "./" agree.
QString canonicalOrClean(const QString &path)
{
    const QString canonical = QFileInfo(path).canonicalFilePath();
    return canonical.isEmpty() ? absoluteClean(path) : canonical;
}

bool pathExists(const QString &path)
{
    const QFileInfo info(path);
    return info.exists() || info.isSymLink(); // a dangling symlink is still in the way
}

/// The file for an IDX base name in `source`: the plain file (as torchvision leaves it after
/// extracting) or the gzipped one (as Debian ships it); empty when neither is there.
QString findIdxFile(const QString &source, const QString &baseName)
{
    const QString plain = source + u'/' + baseName;
    if (QFileInfo(plain).isFile())
        return plain;
    const QString gz = plain + u".gz";
    if (QFileInfo(gz).isFile())
        return gz;
    return {};
}

/// Reads plain and gzipped files alike (zlib passes non-gzip data through unchanged).
class IdxReader
{
public:
    explicit IdxReader(QString path)
        : m_path(std::move(path))
    { }
    ~IdxReader()
    {
        if (m_file)
            gzclose(m_file);
    }
    IdxReader(const IdxReader &) = delete;
    IdxReader &operator=(const IdxReader &) = delete;

    Status open()
    {
        // QFile gives a readable reason (permissions, ...) that gzopen would only put in errno.
        QFile probe(m_path);
        if (!probe.open(QIODevice::ReadOnly))
            return fail(probe.errorString());
        if (probe.size() == 0)
            return fail(QStringLiteral("the file is empty"));
        probe.close();
#ifdef _WIN32
        m_file = gzopen_w(reinterpret_cast<const wchar_t *>(m_path.utf16()), "rb");
#else
        m_file = gzopen(QFile::encodeName(m_path).constData(), "rb");
#endif
        if (!m_file)
            return fail(qt_error_string(errno));
        gzbuffer(m_file, 1 << 18);
        return success();
    }

    /// Reads up to `size` bytes; fewer only at the end of the data. -1 on an error (see m_error).
    int64_t read(void *data, int64_t size)
    {
        auto *out = static_cast<char *>(data);
        int64_t got = 0;
        while (got < size) {
            const auto want = unsigned(std::min<int64_t>(size - got, kReadChunk));
            const int n = gzread(m_file, out + got, want);
            if (n < 0 || (n == 0 && gzError() != Z_OK)) {
                m_error = gzReason();
                return -1;
            }
            if (n == 0)
                break;
            got += n;
        }
        return got;
    }

    /// Reads exactly `size` bytes or fails naming what is wrong; `what` says what was expected.
    Status readExactly(void *data, int64_t size, const QString &what)
    {
        const int64_t got = read(data, size);
        if (got < 0)
            return fail(m_error);
        if (got < size)
            return fail(QStringLiteral("truncated: the data ends after %1 of the %2 bytes of %3")
                            .arg(got)
                            .arg(size)
                            .arg(what));
        return success();
    }

    /// Reads `size` bytes into a buffer that grows with what the file really holds, so that a
    /// lying header cannot make us allocate more than the content.
    Status readInto(std::vector<uint8_t> &buffer, int64_t size, const QString &what)
    {
        buffer.clear();
        int64_t got = 0;
        while (got < size) {
            const int64_t chunk = std::min(size - got, kReadChunk);
            buffer.resize(size_t(got + chunk));
            const int64_t n = read(buffer.data() + got, chunk);
            if (n < 0)
                return fail(m_error);
            got += n;
            if (n < chunk) {
                buffer.resize(size_t(got));
                return fail(
                    QStringLiteral("truncated: the data ends after %1 of the %2 bytes of %3")
                        .arg(got)
                        .arg(size)
                        .arg(what));
            }
        }
        return success();
    }

    /// Fails when there is data after the end; reading to the end also checks the gzip CRC.
    Status expectEnd()
    {
        char extra[16];
        const int64_t n = read(extra, sizeof extra);
        if (n < 0)
            return fail(m_error);
        if (n > 0)
            return fail(QStringLiteral("unexpected data after the last item (the header's count "
                                       "is too small, or the file is not what it claims)"));
        return success();
    }

    Status fail(const QString &reason) const
    {
        return Error{QStringLiteral("Cannot read %1: %2").arg(quoted(m_path), reason)};
    }

private:
    int gzError() const
    {
        int code = Z_OK;
        gzerror(m_file, &code);
        return code;
    }

    QString gzReason() const
    {
        int code = Z_OK;
        const char *message = gzerror(m_file, &code);
        switch (code) {
        case Z_BUF_ERROR:
            return QStringLiteral("truncated gzip data (the compressed file ends early)");
        case Z_DATA_ERROR:
            return QStringLiteral("corrupt gzip data (%1)").arg(QString::fromLocal8Bit(message));
        case Z_ERRNO:
            return qt_error_string(errno);
        case Z_MEM_ERROR:
            return QStringLiteral("out of memory");
        default:
            return QString::fromLocal8Bit(message);
        }
    }

    QString m_path;
    QString m_error;
    gzFile m_file = nullptr;
};

quint32 bigEndian32(const unsigned char *bytes)
{
    return quint32(bytes[0]) << 24 | quint32(bytes[1]) << 16 | quint32(bytes[2]) << 8
        | quint32(bytes[3]);
}

QString hex32(quint32 value)
{
    return QStringLiteral("0x%1").arg(uint(value), 8, 16, QChar(u'0'));
}

struct IdxImages
{
    QString path;
    int64_t count = 0;
    int rows = 0;
    int cols = 0;
    std::vector<uint8_t> pixels;
};

struct IdxLabels
{
    QString path;
    std::vector<uint8_t> labels;
};

Result<IdxImages> readIdxImages(const QString &path)
{
    IdxReader reader(path);
    if (Status status = reader.open(); !status)
        return status.error();
    unsigned char header[16];
    if (Status status = reader.readExactly(header, sizeof header, QStringLiteral("the header"));
        !status) {
        return status.error();
    }
    const quint32 magic = bigEndian32(header);
    if (magic != kImagesMagic) {
        return reader
            .fail(QStringLiteral("not an IDX image file (magic number %1, expected %2)")
                      .arg(hex32(magic), hex32(kImagesMagic)))
            .error();
    }
    IdxImages images;
    images.path = path;
    const quint32 count = bigEndian32(header + 4);
    const quint32 rows = bigEndian32(header + 8);
    const quint32 cols = bigEndian32(header + 12);
    if (count == 0)
        return reader.fail(QStringLiteral("the header says it holds no images")).error();
    if (rows == 0 || cols == 0 || rows > quint32(kMaxSide) || cols > quint32(kMaxSide)) {
        return reader
            .fail(QStringLiteral("unsupported image size %1×%2 in the header").arg(rows).arg(cols))
            .error();
    }
    const int64_t bytes = int64_t(count) * rows * cols;
    if (count > kMaxItems || bytes > kMaxPixelBytes) {
        return reader
            .fail(QStringLiteral("the header claims %1 images of %2×%3 pixels, more than this "
                                 "reader accepts (%4 images of 28×28)")
                      .arg(count)
                      .arg(rows)
                      .arg(cols)
                      .arg(kMaxItems))
            .error();
    }
    images.count = count;
    images.rows = int(rows);
    images.cols = int(cols);
    const QString what = QStringLiteral("%1 images of %2×%3 pixels").arg(count).arg(rows).arg(cols);
    if (Status status = reader.readInto(images.pixels, bytes, what); !status)
        return status.error();
    if (Status status = reader.expectEnd(); !status)
        return status.error();
    return images;
}

Result<IdxLabels> readIdxLabels(const QString &path)
{
    IdxReader reader(path);
    if (Status status = reader.open(); !status)
        return status.error();
    unsigned char header[8];
    if (Status status = reader.readExactly(header, sizeof header, QStringLiteral("the header"));
        !status) {
        return status.error();
    }
    const quint32 magic = bigEndian32(header);
    if (magic != kLabelsMagic) {
        return reader
            .fail(QStringLiteral("not an IDX label file (magic number %1, expected %2)")
                      .arg(hex32(magic), hex32(kLabelsMagic)))
            .error();
    }
    const quint32 count = bigEndian32(header + 4);
    if (count == 0)
        return reader.fail(QStringLiteral("the header says it holds no labels")).error();
    if (count > kMaxItems) {
        return reader
            .fail(QStringLiteral("the header claims %1 labels, more than this reader accepts (%2)")
                      .arg(count)
                      .arg(kMaxItems))
            .error();
    }
    IdxLabels labels;
    labels.path = path;
    const QString what = QStringLiteral("%1 labels").arg(count);
    if (Status status = reader.readInto(labels.labels, count, what); !status)
        return status.error();
    if (Status status = reader.expectEnd(); !status)
        return status.error();
    for (size_t i = 0; i < labels.labels.size(); ++i) {
        if (labels.labels[i] >= kClassCount) {
            return reader
                .fail(QStringLiteral("label %1 of item %2 is out of range (Fashion-MNIST has %3 "
                                     "classes, 0 to %4)")
                          .arg(labels.labels[i])
                          .arg(i)
                          .arg(kClassCount)
                          .arg(kClassCount - 1))
                .error();
        }
    }
    return labels;
}

/// One split to export: its IDX data and the images kept.
struct Split
{
    QString name; ///< "train" or "val"
    IdxImages images;
    IdxLabels labels;
    std::vector<int32_t> selected; ///< indices into the IDX files, in file order
    int digits = 5; ///< zero padding of the file names
};

Result<Split> readSplit(const QString &name, const QString &source, const QString &imagesName,
                        const QString &labelsName)
{
    Split split;
    split.name = name;
    const QString imagesPath = findIdxFile(source, imagesName);
    const QString labelsPath = findIdxFile(source, labelsName);
    // Read the pair side by side: gunzipping the 47 MB of training images is most of the wait.
    Result<IdxLabels> labels = Error{};
    std::thread labelReader([&] {
        try {
            labels = readIdxLabels(labelsPath);
        } catch (const std::exception &e) {
            labels = Error{QStringLiteral("Cannot read %1: %2")
                               .arg(quoted(labelsPath), QString::fromLocal8Bit(e.what()))};
        }
    });
    Result<IdxImages> images = Error{};
    try {
        images = readIdxImages(imagesPath);
    } catch (const std::exception &e) {
        images = Error{QStringLiteral("Cannot read %1: %2")
                           .arg(quoted(imagesPath), QString::fromLocal8Bit(e.what()))};
    }
    labelReader.join();
    if (!images)
        return images.error();
    if (!labels)
        return labels.error();
    split.images = std::move(images).value();
    split.labels = std::move(labels).value();
    if (int64_t(split.labels.labels.size()) != split.images.count) {
        return Error{QStringLiteral("Cannot use %1 with %2: the images file holds %3 images but "
                                    "the labels file holds %4 labels")
                         .arg(quoted(imagesPath), quoted(labelsPath))
                         .arg(split.images.count)
                         .arg(split.labels.labels.size())};
    }
    split.digits = std::max(5, int(QString::number(split.images.count - 1).size()));
    return split;
}

void selectImages(Split &split, int limitPerClass)
{
    std::array<int, kClassCount> taken{};
    const auto &labels = split.labels.labels;
    split.selected.reserve(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) {
        if (limitPerClass > 0 && taken[labels[i]] >= limitPerClass)
            continue;
        ++taken[labels[i]];
        split.selected.push_back(int32_t(i));
    }
}

struct Marker
{
    int version = 0;
    QString source;
    int limitPerClass = -1;
    int64_t trainImages = -1;
    int64_t valImages = -1;
};

Result<Marker> readMarker(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("Cannot read %1: %2").arg(quoted(path), file.errorString())};
    // The marker is a few hundred bytes; anything large is not ours.
    const QByteArray bytes = file.read(1 << 16);
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(bytes, &parseError);
    const QJsonObject object = document.object();
    if (parseError.error != QJsonParseError::NoError || !document.isObject()
        || object.value(u"format").toString() != u"ifstudio-sample-data") {
        return Error{QStringLiteral("Cannot read %1: not an ImageFolder Studio sample data marker")
                         .arg(quoted(path))};
    }
    Marker marker;
    marker.version = object.value(u"version").toInt();
    marker.source = object.value(u"source").toString();
    marker.limitPerClass = object.value(u"limitPerClass").toInt(-1);
    const QJsonObject counts = object.value(u"images").toObject();
    marker.trainImages = counts.value(u"train").toInteger(-1);
    marker.valImages = counts.value(u"val").toInteger(-1);
    return marker;
}

Status writeMarker(const QString &path, const QString &source, int limitPerClass,
                   int64_t trainImages, int64_t valImages)
{
    QJsonObject object;
    object.insert(u"format", QStringLiteral("ifstudio-sample-data"));
    object.insert(u"version", kMarkerVersion);
    object.insert(u"dataset", QStringLiteral("Fashion-MNIST"));
    object.insert(u"source", source);
    object.insert(u"limitPerClass", limitPerClass);
    object.insert(u"images",
                  QJsonObject{{QStringLiteral("train"), qint64(trainImages)},
                              {QStringLiteral("val"), qint64(valImages)}});
    object.insert(u"classes", QJsonArray::fromStringList(fashionMnistFolderNames()));
    object.insert(u"labels", QJsonArray::fromStringList(fashionMnistLabels()));
    object.insert(u"created", QDateTime::currentDateTimeUtc().toString(Qt::ISODate));
    object.insert(u"writer", QStringLiteral("ImageFolder Studio " IFS_VERSION));

    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return Error{QStringLiteral("Cannot write %1: %2").arg(quoted(path), file.errorString())};
    file.write(QJsonDocument(object).toJson(QJsonDocument::Indented));
    if (!file.commit())
        return Error{QStringLiteral("Cannot write %1: %2").arg(quoted(path), file.errorString())};
    return success();
}

/// Counts the PNGs of an earlier export's split; -1 when a class folder is missing.
int64_t countExportedImages(const QString &splitRoot)
{
    int64_t count = 0;
    for (const QString &folder : fashionMnistFolderNames()) {
        const QString classRoot = splitRoot + u'/' + folder;
        if (!QFileInfo(classRoot).isDir())
            return -1;
        QDirIterator it(classRoot, {QStringLiteral("*.png")}, QDir::Files);
        while (it.hasNext()) {
            it.next();
            ++count;
        }
    }
    return count;
}

/// What DEST holds already: nothing of ours or theirs (go on), a complete matching export (keep
/// it), or something in the way (refuse).
Result<SampleDataResult> inspectDestination(const QString &root, const QString &source,
                                            int limitPerClass)
{
    SampleDataResult result;
    result.root = root;
    result.source = source;
    const QFileInfo rootInfo(root);
    if (rootInfo.exists() && !rootInfo.isDir()) {
        return Error{QStringLiteral("Cannot export Fashion-MNIST to %1: it is a file, not a folder")
                         .arg(quoted(root))};
    }
    const QString trainRoot = root + u"/train";
    const QString valRoot = root + u"/val";
    if (!pathExists(trainRoot) && !pathExists(valRoot))
        return result; // a stale marker alone is overwritten at the end

    const QString markerPath = root + u'/' + QString::fromUtf16(kSampleDataMarker);
    if (!QFileInfo::exists(markerPath)) {
        return Error{QStringLiteral("Refusing to export Fashion-MNIST to %1: it already has a "
                                    "train or val folder that ImageFolder Studio did not write. "
                                    "Nothing was changed; choose an empty or new folder.")
                         .arg(quoted(root))};
    }
    Result<Marker> marker = readMarker(markerPath);
    if (!marker) {
        return Error{QStringLiteral("Refusing to export Fashion-MNIST to %1: it already has a "
                                    "train or val folder, and its marker is unreadable (%2). "
                                    "Nothing was changed; choose an empty or new folder.")
                         .arg(quoted(root), marker.errorMessage())};
    }
    if (marker->version != kMarkerVersion || marker->limitPerClass != limitPerClass
        || canonicalOrClean(marker->source) != source) {
        const auto describe = [](const QString &from, int limit) {
            return QStringLiteral("from %1, %2")
                .arg(quoted(from),
                     limit > 0 ? QStringLiteral("%1 images per class").arg(limit)
                               : QStringLiteral("all images"));
        };
        return Error{QStringLiteral("Refusing to export Fashion-MNIST to %1: it holds an earlier "
                                    "export with other options (%2; asked for %3). Nothing was "
                                    "changed; remove its train and val folders or choose another "
                                    "folder.")
                         .arg(quoted(root), describe(marker->source, marker->limitPerClass),
                              describe(source, limitPerClass))};
    }
    const int64_t train = countExportedImages(trainRoot);
    const int64_t val = countExportedImages(valRoot);
    if (train != marker->trainImages || val != marker->valImages) {
        return Error{QStringLiteral("Refusing to export Fashion-MNIST to %1: an earlier export "
                                    "there is incomplete or was changed (expected %2 train and %3 "
                                    "val images). Nothing was changed; remove its train and val "
                                    "folders to export again.")
                         .arg(quoted(root))
                         .arg(marker->trainImages)
                         .arg(marker->valImages)};
    }
    result.alreadyThere = true;
    result.trainImages = train;
    result.valImages = val;
    return result;
}

/// Encodes an 8-bit grayscale image as PNG with "stored" (uncompressed) deflate blocks.
/// libpng (behind cv::imencode and QImage) sets up a full deflate state per image, which costs
/// more than a 28×28 image is worth: this is ~100 times faster, and the files stay under one
/// file-system block (~900 bytes) anyway. Any PNG decoder reads them as mode "L".
void encodeGrayPng(const uint8_t *pixels, int width, int height, std::vector<uint8_t> &out)
{
    const auto put32 = [&out](quint32 value) {
        out.push_back(uint8_t(value >> 24));
        out.push_back(uint8_t(value >> 16));
        out.push_back(uint8_t(value >> 8));
        out.push_back(uint8_t(value));
    };
    // Chunk = length, type, data, CRC of type and data.
    const auto beginChunk = [&](const char *type, size_t length) {
        put32(quint32(length));
        out.insert(out.end(), type, type + 4);
        return out.size() - 4;
    };
    const auto endChunk = [&](size_t typeAt) {
        put32(quint32(crc32(0, out.data() + typeAt, uInt(out.size() - typeAt))));
    };

    const size_t rowBytes = size_t(width) + 1; // filter type byte + pixels
    const size_t rawSize = rowBytes * size_t(height);
    constexpr size_t kMaxStored = 65535;
    const size_t blocks = std::max<size_t>(1, (rawSize + kMaxStored - 1) / kMaxStored);
    const size_t zlibSize = 2 + blocks * 5 + rawSize + 4;

    out.clear();
    out.reserve(8 + 25 + 12 + zlibSize + 12);
    static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    out.insert(out.end(), kSignature, kSignature + 8);

    size_t at = beginChunk("IHDR", 13);
    put32(quint32(width));
    put32(quint32(height));
    const uint8_t ihdr[5] = {8, 0, 0, 0, 0}; // 8 bits, grayscale, deflate, no filter, no interlace
    out.insert(out.end(), ihdr, ihdr + 5);
    endChunk(at);

    at = beginChunk("IDAT", zlibSize);
    out.push_back(0x78); // zlib header: deflate, 32K window, no dictionary (0x7801 % 31 == 0)
    out.push_back(0x01);
    uLong adler = adler32(0, nullptr, 0);
    size_t row = 0;
    size_t column = 0; // 0 = the row's filter byte, else pixel column + 1
    size_t left = rawSize;
    for (size_t block = 0; block < blocks; ++block) {
        const size_t length = std::min(left, kMaxStored);
        left -= length;
        out.push_back(left == 0 ? 1 : 0); // BFINAL, BTYPE 00 (stored)
        out.push_back(uint8_t(length));
        out.push_back(uint8_t(length >> 8));
        out.push_back(uint8_t(~length));
        out.push_back(uint8_t(~length >> 8));
        const size_t dataAt = out.size();
        for (size_t n = 0; n < length;) {
            if (column == 0) {
                out.push_back(0); // filter: none
                ++column;
                ++n;
                continue;
            }
            const size_t take = std::min(length - n, rowBytes - column);
            const uint8_t *from = pixels + row * size_t(width) + (column - 1);
            out.insert(out.end(), from, from + take);
            n += take;
            column += take;
            if (column == rowBytes) {
                column = 0;
                ++row;
            }
        }
        adler = adler32(adler, out.data() + dataAt, uInt(length));
    }
    put32(quint32(adler));
    endChunk(at);

    at = beginChunk("IEND", 0);
    endChunk(at);
}

/// Creates `path` (which must not exist yet) with `bytes`; returns the reason on failure.
/// Creating 70,000 small files is bound by system calls: on Unix this does three (QFile adds a
/// stat per file).
QString writeNewFile(const QString &path, const std::vector<uint8_t> &bytes)
{
#ifdef Q_OS_UNIX
    const QByteArray name = QFile::encodeName(path);
    const int fd = ::open(name.constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return qt_error_string(errno);
    size_t written = 0;
    while (written < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const QString reason = qt_error_string(n < 0 ? errno : EIO);
            ::close(fd);
            return reason;
        }
        written += size_t(n);
    }
    if (::close(fd) != 0)
        return qt_error_string(errno);
    return {};
#else
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::NewOnly)
        || file.write(reinterpret_cast<const char *>(bytes.data()), qint64(bytes.size()))
            != qint64(bytes.size())
        || !file.flush()) {
        return file.errorString();
    }
    return {};
#endif
}

struct WriteJob
{
    const Split *split;
    int classIndex;
    int32_t imageIndex;
};

/// Encodes and writes the PNGs with `threads` workers. Returns the first error, if any.
Status writeImages(const QString &tempRoot, const std::vector<Split> &splits, int threads,
                   const std::function<void(int64_t, int64_t)> &progress,
                   const std::atomic_bool *cancel)
{
    const QStringList folders = fashionMnistFolderNames();
    // Folder prefixes per split and class, built once.
    std::vector<std::array<QString, kClassCount>> prefixes(splits.size());
    std::vector<WriteJob> jobs;
    for (size_t s = 0; s < splits.size(); ++s) {
        const Split &split = splits[s];
        for (int c = 0; c < kClassCount; ++c) {
            prefixes[s][c] = tempRoot + u'/' + split.name + u'/' + folders[c] + u'/';
            if (!QDir().mkpath(prefixes[s][c]))
                return Error{QStringLiteral("Cannot create %1").arg(quoted(prefixes[s][c]))};
        }
        for (const int32_t index : split.selected)
            jobs.push_back({&split, split.labels.labels[size_t(index)], index});
    }

    const auto total = int64_t(jobs.size());
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::atomic_bool failed{false};
    QMutex errorMutex;
    QString firstError;
    const auto setError = [&](const QString &message) {
        QMutexLocker lock(&errorMutex);
        if (firstError.isEmpty())
            firstError = message;
        failed = true;
    };

    const auto work = [&] {
        try {
            std::vector<uint8_t> png;
            for (;;) {
                if (failed.load(std::memory_order_relaxed)
                    || (cancel && cancel->load(std::memory_order_relaxed))) {
                    return;
                }
                const int64_t j = next.fetch_add(1, std::memory_order_relaxed);
                if (j >= total)
                    return;
                const WriteJob &job = jobs[size_t(j)];
                const Split &split = *job.split;
                const size_t imageBytes = size_t(split.images.rows) * size_t(split.images.cols);
                const size_t s = size_t(job.split - splits.data());
                const QString path = prefixes[s][job.classIndex]
                    + QString::number(job.imageIndex).rightJustified(split.digits, u'0') + u".png";
                encodeGrayPng(split.images.pixels.data() + size_t(job.imageIndex) * imageBytes,
                              split.images.cols, split.images.rows, png);
                if (const QString error = writeNewFile(path, png); !error.isEmpty()) {
                    setError(QStringLiteral("Cannot write %1: %2").arg(quoted(path), error));
                    return;
                }
                const int64_t now = done.fetch_add(1, std::memory_order_relaxed) + 1;
                if (progress && now % kProgressEvery == 0)
                    progress(now, total);
            }
        } catch (const std::exception &e) {
            setError(
                QStringLiteral("Cannot write the PNGs: %1").arg(QString::fromLocal8Bit(e.what())));
        }
    };

    if (progress)
        progress(0, total);
    const int workers = int(std::clamp<int64_t>(total / 64 + 1, 1, std::max(1, threads)));
    std::vector<std::thread> pool;
    pool.reserve(size_t(workers - 1));
    try {
        for (int i = 1; i < workers; ++i)
            pool.emplace_back(work);
    } catch (const std::system_error &) {
        // Fewer threads than hoped: the ones started (and this one) still do all the work.
    }
    work();
    for (std::thread &thread : pool)
        thread.join();
    if (failed)
        return Error{firstError};
    if (progress && !(cancel && cancel->load()))
        progress(total, total);
    return success();
}

} // namespace

QString defaultFashionMnistSource()
{
    return QStringLiteral("/usr/share/datasets/fashion-mnist");
}

QStringList fashionMnistFileNames()
{
    return {QString::fromUtf16(kTrainImages), QString::fromUtf16(kTrainLabels),
            QString::fromUtf16(kValImages), QString::fromUtf16(kValLabels)};
}

QStringList missingFashionMnistFiles(const QString &source)
{
    QStringList missing;
    for (const QString &name : fashionMnistFileNames()) {
        if (findIdxFile(source, name).isEmpty())
            missing.append(name);
    }
    return missing;
}

QStringList fashionMnistLabels()
{
    return {QStringLiteral("T-shirt/top"), QStringLiteral("Trouser"), QStringLiteral("Pullover"),
            QStringLiteral("Dress"),       QStringLiteral("Coat"),    QStringLiteral("Sandal"),
            QStringLiteral("Shirt"),       QStringLiteral("Sneaker"), QStringLiteral("Bag"),
            QStringLiteral("Ankle boot")};
}

QStringList fashionMnistFolderNames()
{
    QStringList names = fashionMnistLabels();
    for (QString &name : names)
        name.replace(u'/', u'_').replace(u' ', u'_');
    return names;
}

Result<SampleDataResult> exportFashionMnist(const QString &dest, const SampleDataOptions &options,
                                            const std::function<void(int64_t, int64_t)> &progress,
                                            const std::atomic_bool *cancel)
{
    if (dest.isEmpty())
        return Error{QStringLiteral("Cannot export Fashion-MNIST: no destination folder given")};
    if (options.limitPerClass < 0) {
        return Error{QStringLiteral("Cannot export Fashion-MNIST: the limit per class must be 0 "
                                    "(everything) or positive, not %1")
                         .arg(options.limitPerClass)};
    }
    QElapsedTimer timer;
    timer.start();
    const QString root = absoluteClean(dest);
    const QString source
        = canonicalOrClean(options.source.isEmpty() ? defaultFashionMnistSource() : options.source);

    // 1. Nothing is read or written before we know that DEST can take the export.
    Result<SampleDataResult> inspected = inspectDestination(root, source, options.limitPerClass);
    if (!inspected || inspected->alreadyThere) {
        if (inspected)
            qCDebug(lcSampleData) << "Fashion-MNIST export already complete in" << root;
        return inspected;
    }
    SampleDataResult result = std::move(inspected).value();

    // 2. Read and validate all four IDX files before creating anything.
    if (const QStringList missing = missingFashionMnistFiles(source); !missing.isEmpty()) {
        return Error{QStringLiteral("Fashion-MNIST was not found in %1: %2 is missing (plain or "
                                    ".gz). Install Debian's dataset-fashion-mnist package "
                                    "(apt-get install dataset-fashion-mnist) or choose the folder "
                                    "that holds the IDX files.")
                         .arg(quoted(source), missing.join(QStringLiteral(", ")))};
    }
    std::vector<Split> splits;
    const std::array<std::array<const char16_t *, 3>, 2> layout{{
        {u"train", kTrainImages, kTrainLabels},
        {u"val", kValImages, kValLabels},
    }};
    for (const auto &[name, imagesName, labelsName] : layout) {
        if (cancel && cancel->load()) {
            result.cancelled = true;
            return result;
        }
        Result<Split> split
            = readSplit(QString::fromUtf16(name), source, QString::fromUtf16(imagesName),
                        QString::fromUtf16(labelsName));
        if (!split)
            return split.error();
        selectImages(split.value(), options.limitPerClass);
        splits.push_back(std::move(split).value());
    }
    qCDebug(lcSampleData) << "Read Fashion-MNIST IDX files from" << source << "in"
                          << timer.elapsed() << "ms";
    if (cancel && cancel->load()) {
        result.cancelled = true;
        return result;
    }

    // 3. Write everything into a hidden temporary folder inside DEST (same file system, so that
    // the final renames are atomic). QTemporaryDir removes it on every early return.
    if (!QDir().mkpath(root)) {
        return Error{QStringLiteral("Cannot export Fashion-MNIST: cannot create the folder %1")
                         .arg(quoted(root))};
    }
    QTemporaryDir temp(root + u"/.ifstudio-export-XXXXXX");
    if (!temp.isValid()) {
        return Error{QStringLiteral("Cannot export Fashion-MNIST: cannot create a temporary folder "
                                    "in %1: %2")
                         .arg(quoted(root), temp.errorString())};
    }
    const int threads = options.threads > 0 ? options.threads : QThread::idealThreadCount();
    if (Status written = writeImages(temp.path(), splits, threads, progress, cancel); !written)
        return written.error();
    if (cancel && cancel->load()) {
        qCDebug(lcSampleData) << "Fashion-MNIST export cancelled";
        result.cancelled = true;
        return result;
    }

    // 4. Move train/ and val/ into place, then mark the export complete. On any failure, move
    // back what was moved so that the temporary folder takes everything with it.
    QStringList moved;
    const auto rollBack = [&] {
        for (const QString &name : std::as_const(moved))
            QDir().rename(root + u'/' + name, temp.path() + u'/' + name);
    };
    for (const Split &split : splits) {
        const QString from = temp.path() + u'/' + split.name;
        const QString to = root + u'/' + split.name;
        if (pathExists(to)) {
            rollBack();
            return Error{QStringLiteral("Cannot export Fashion-MNIST: %1 appeared while exporting; "
                                        "it was left untouched")
                             .arg(quoted(to))};
        }
        if (!QDir().rename(from, to)) {
            rollBack();
            return Error{QStringLiteral("Cannot export Fashion-MNIST: cannot move %1 to %2")
                             .arg(quoted(from), quoted(to))};
        }
        moved.append(split.name);
    }
    result.trainImages = int64_t(splits[0].selected.size());
    result.valImages = int64_t(splits[1].selected.size());
    result.imagesWritten = result.trainImages + result.valImages;
    const QString markerPath = root + u'/' + QString::fromUtf16(kSampleDataMarker);
    if (Status marked = writeMarker(markerPath, source, options.limitPerClass, result.trainImages,
                                    result.valImages);
        !marked) {
        rollBack();
        return marked.error();
    }
    qCDebug(lcSampleData) << "Exported" << result.imagesWritten << "Fashion-MNIST images to" << root
                          << "in" << timer.elapsed() << "ms";
    return result;
}

} // namespace ifs

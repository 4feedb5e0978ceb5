#include "datasets/thumbnailmodel.h"

#include "base/filenames.h"

#include "common/thumbnailloader.h"

#include <QPainter>
#include <QPainterPath>

#include <algorithm>

namespace ifs {

namespace {

constexpr int kGlyphSize = 64;

// Decode sizes step by ~1.4x so that a size slider only re-decodes now and then.
int decodeSizeFor(int pixels)
{
    int step = 32;
    while (true) {
        if (pixels <= step)
            return step;
        if (pixels <= step * 3 / 2)
            return step * 3 / 2;
        step *= 2;
    }
}

// A picture (frame, hills, sun): what stands in for a thumbnail. Torn and red when broken.
QPixmap paintGlyph(bool broken)
{
    QPixmap pixmap(kGlyphSize, kGlyphSize);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    const QColor color = broken ? QColor(210, 70, 70) : QColor(128, 128, 128, 150);

    const QRectF frame(8, 12, 48, 40);
    painter.setPen(QPen(color, 3));
    painter.setBrush(Qt::NoBrush);
    painter.drawRoundedRect(frame, 5, 5);

    painter.setPen(Qt::NoPen);
    painter.setBrush(color);
    painter.drawEllipse(QPointF(42, 24), 4.5, 4.5);
    QPainterPath hills;
    hills.moveTo(12, 48);
    hills.lineTo(25, 30);
    hills.lineTo(33, 40);
    hills.lineTo(38, 34);
    hills.lineTo(52, 48);
    hills.closeSubpath();
    painter.drawPath(hills);

    if (broken) {
        // Tear the picture along a zigzag, and add a badge that reads at small sizes.
        painter.setCompositionMode(QPainter::CompositionMode_Clear);
        painter.setPen(QPen(Qt::black, 5, Qt::SolidLine, Qt::FlatCap, Qt::MiterJoin));
        const QPointF tear[] = {{26, 4}, {31, 18}, {23, 30}, {31, 42}, {26, 60}};
        painter.drawPolyline(tear, std::size(tear));
        const QPointF badge(48, 48);
        painter.setPen(Qt::NoPen);
        painter.setBrush(Qt::black);
        painter.drawEllipse(badge, 15, 15);
        painter.setCompositionMode(QPainter::CompositionMode_SourceOver);
        painter.setBrush(color);
        painter.drawEllipse(badge, 12, 12);
        painter.setPen(QPen(Qt::white, 3.5, Qt::SolidLine, Qt::RoundCap));
        painter.drawLine(badge + QPointF(-5, -5), badge + QPointF(5, 5));
        painter.drawLine(badge + QPointF(-5, 5), badge + QPointF(5, -5));
    }
    return pixmap;
}

QString fileNameOf(const QString &relativePath)
{
    return relativePath.mid(relativePath.lastIndexOf(u'/') + 1);
}

} // namespace

ThumbnailModel::ThumbnailModel(QObject *parent)
    : QAbstractListModel(parent)
    , m_loader(new ThumbnailLoader(this))
    , m_decodeSize(decodeSizeFor(ThumbnailLoader::kDefaultThumbnailSize))
{
    m_loader->setThumbnailSize(m_decodeSize);
    m_cache.setMaxCost(m_cacheLimit);
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this, &ThumbnailModel::handleReady);
    connect(m_loader, &ThumbnailLoader::thumbnailFailed, this, &ThumbnailModel::handleFailed);
}

ThumbnailModel::~ThumbnailModel() = default;

void ThumbnailModel::setDataset(IndexPtr index, std::vector<int> sampleRows)
{
    beginResetModel();
    if (index != m_index) {
        m_cache.clear();
        m_failures.clear();
    }
    m_loader->clear();
    m_waitingRows.clear();
    m_index = std::move(index);
    const int sampleCount = m_index ? int(m_index->samples.size()) : 0;
    std::erase_if(sampleRows, [sampleCount](int row) { return row < 0 || row >= sampleCount; });
    m_rows = std::move(sampleRows);
    endResetModel();
}

void ThumbnailModel::clear()
{
    setDataset({}, {});
}

std::vector<int> ThumbnailModel::sampleRowsOfClass(const ImageFolderIndex &index, int classIndex)
{
    std::vector<int> rows;
    rows.reserve(classIndex >= 0 && classIndex < int(index.counts.size())
                     ? size_t(index.counts[classIndex])
                     : index.samples.size());
    for (int row = 0; row < int(index.samples.size()); ++row) {
        if (classIndex < 0 || index.samples[row].classIndex == classIndex)
            rows.push_back(row);
    }
    return rows;
}

int ThumbnailModel::sampleRow(const QModelIndex &index) const
{
    if (!index.isValid() || index.model() != this || index.row() >= int(m_rows.size()))
        return -1;
    return m_rows[index.row()];
}

QModelIndex ThumbnailModel::indexForSampleRow(int sampleRow) const
{
    const auto it = std::find(m_rows.begin(), m_rows.end(), sampleRow);
    return it == m_rows.end() ? QModelIndex() : index(int(it - m_rows.begin()));
}

QString ThumbnailModel::absolutePath(int row) const
{
    const Sample *sample = sampleAt(row);
    return sample ? m_index->absolutePath(*sample) : QString();
}

void ThumbnailModel::setThumbnailSize(int pixels)
{
    const int decodeSize = decodeSizeFor(qMax(16, pixels));
    if (decodeSize == m_decodeSize)
        return;
    m_decodeSize = decodeSize;
    // Cached thumbnails stay and are shown until their new decode arrives (data() asks for it).
    m_loader->setThumbnailSize(decodeSize);
    m_waitingRows.clear();
    if (!m_rows.empty())
        Q_EMIT dataChanged(index(0), index(int(m_rows.size()) - 1),
                           {Qt::DecorationRole, StateRole});
}

void ThumbnailModel::setCacheLimit(int64_t bytes)
{
    m_cacheLimit = qMax<int64_t>(bytes, 1024 * 1024);
    m_cache.setMaxCost(m_cacheLimit);
}

void ThumbnailModel::prioritizeRows(int first, int last, int prefetchFirst, int prefetchLast)
{
    const int rowCount = int(m_rows.size());
    QStringList paths;
    m_waitingRows.clear(); // what is not prioritised now is cancelled below
    const auto add = [&](int from, int to) {
        from = qMax(0, from);
        to = qMin(rowCount - 1, to);
        for (int row = from; row <= to; ++row) {
            const QString path = absolutePath(row);
            const Thumbnail *cached = m_cache.object(path);
            if ((cached && cached->decodeSize == m_decodeSize) || m_failures.contains(path))
                continue;
            QList<int> &rows = m_waitingRows[path];
            if (rows.isEmpty())
                paths.append(path);
            if (!rows.contains(row))
                rows.append(row);
        }
    };
    if (first >= 0 && last >= first) {
        ensureCacheFits(2 * (last - first + 1)
                        + (prefetchLast >= prefetchFirst ? prefetchLast - prefetchFirst + 1 : 0));
        add(first, last);
    }
    if (prefetchFirst >= 0 && prefetchLast >= prefetchFirst)
        add(prefetchFirst, prefetchLast);
    m_loader->prioritize(paths);
}

int ThumbnailModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

QVariant ThumbnailModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const int row = index.row();
    const Sample &sample = *sampleAt(row);

    switch (role) {
    case Qt::DisplayRole: // undecodable bytes of a name show as U+FFFD (base/filenames.h)
        return displayFileName(fileNameOf(sample.displayPath()));
    case Qt::DecorationRole: {
        const QString path = m_index->absolutePath(sample);
        if (const Thumbnail *cached = m_cache.object(path)) {
            if (cached->decodeSize != m_decodeSize)
                requestThumbnail(path, row);
            return cached->pixmap;
        }
        if (m_failures.contains(path))
            return placeholder(Failed);
        requestThumbnail(path, row);
        return placeholder(Pending);
    }
    case Qt::ToolTipRole: {
        const QString className = m_index->classes.value(sample.classIndex);
        QString tip
            = tr("%1\nClass: %2 (%3)").arg(sample.displayPath(), className).arg(sample.classIndex);
        const QString error = m_failures.value(m_index->absolutePath(sample));
        if (!error.isEmpty())
            tip += u'\n' + error;
        return displayFileName(tip);
    }
    case PathRole:
        return m_index->absolutePath(sample);
    case RelativePathRole:
        return sample.displayPath();
    case SampleRowRole:
        return m_rows[row];
    case ClassIndexRole:
        return sample.classIndex;
    case ClassNameRole:
        return m_index->classes.value(sample.classIndex);
    case StateRole: {
        const QString path = m_index->absolutePath(sample);
        if (m_cache.contains(path))
            return int(Ready);
        return int(m_failures.contains(path) ? Failed : Pending);
    }
    case ErrorRole:
        return m_failures.value(m_index->absolutePath(sample));
    default:
        return {};
    }
}

QHash<int, QByteArray> ThumbnailModel::roleNames() const
{
    QHash<int, QByteArray> names = QAbstractListModel::roleNames();
    names.insert(PathRole, "path");
    names.insert(RelativePathRole, "relativePath");
    names.insert(SampleRowRole, "sampleRow");
    names.insert(ClassIndexRole, "classIndex");
    names.insert(ClassNameRole, "className");
    names.insert(StateRole, "state");
    names.insert(ErrorRole, "error");
    return names;
}

const Sample *ThumbnailModel::sampleAt(int row) const
{
    if (row < 0 || row >= int(m_rows.size()))
        return nullptr;
    return &m_index->samples[size_t(m_rows[row])];
}

void ThumbnailModel::requestThumbnail(const QString &path, int row) const
{
    QList<int> &rows = m_waitingRows[path];
    if (!rows.contains(row))
        rows.append(row);
    m_loader->request(path);
}

void ThumbnailModel::handleReady(const QString &path, const QImage &image)
{
    // QPixmap only here, in the GUI thread; the cost is what the pixmap holds in bytes.
    auto *thumbnail = new Thumbnail{QPixmap::fromImage(image), m_decodeSize};
    const int64_t cost = qMax<int64_t>(1, int64_t(image.sizeInBytes()));
    if (cost > m_cache.maxCost())
        ensureCacheFits(4);
    m_cache.insert(path, thumbnail, cost);
    m_failures.remove(path);
    notifyRows(path);
}

void ThumbnailModel::handleFailed(const QString &path, const QString &message)
{
    m_cache.remove(path);
    m_failures.insert(path, message);
    notifyRows(path);
}

void ThumbnailModel::notifyRows(const QString &path)
{
    const QList<int> rows = m_waitingRows.take(path);
    static const QList<int> kRoles{Qt::DecorationRole, Qt::ToolTipRole, StateRole, ErrorRole};
    for (int row : rows) {
        if (row < int(m_rows.size())) {
            const QModelIndex changed = index(row);
            Q_EMIT dataChanged(changed, changed, kRoles);
        }
    }
}

QPixmap ThumbnailModel::placeholder(State state) const
{
    QPixmap &pixmap = state == Failed ? m_failedPixmap : m_pendingPixmap;
    if (pixmap.isNull())
        pixmap = paintGlyph(state == Failed);
    return pixmap;
}

void ThumbnailModel::ensureCacheFits(int thumbnails)
{
    // A cache smaller than what is on screen would evict visible thumbnails and decode them again
    // on every repaint.
    const int64_t needed = int64_t(thumbnails) * m_decodeSize * m_decodeSize * 4;
    m_cache.setMaxCost(qMax(m_cacheLimit, needed));
}

} // namespace ifs

#pragma once

#include "dataset/imagefolder.h"

#include <QAbstractListModel>
#include <QCache>
#include <QHash>
#include <QList>
#include <QPixmap>
#include <QString>

#include <vector>

namespace ifs {

class ThumbnailLoader;

/// The images of a dataset (one class or all) as a flat list with thumbnails.
///
/// rowCount() and data() are O(1) and never decode: a thumbnail missing from the cache is
/// requested from the model's ThumbnailLoader and a placeholder returned meanwhile; dataChanged()
/// follows for that row when it arrives. Thumbnails are kept in a cache bounded in bytes, keyed by
/// absolute path, so switching between classes of the same scan reuses them.
class ThumbnailModel : public QAbstractListModel
{
    Q_OBJECT

public:
    enum Role {
        PathRole = Qt::UserRole + 1, ///< QString: absolute path of the file
        RelativePathRole, ///< QString: path relative to the dataset root
        SampleRowRole, ///< int: row into ImageFolderIndex::samples
        ClassIndexRole, ///< int
        ClassNameRole, ///< QString
        StateRole, ///< int: a ThumbnailModel::State
        ErrorRole, ///< QString: why the thumbnail failed; empty otherwise
    };
    Q_ENUM(Role)

    enum State {
        Pending, ///< Not decoded yet (requested, or will be when painted)
        Ready, ///< DecorationRole holds the thumbnail
        Failed, ///< The file cannot be decoded; ErrorRole says why
    };
    Q_ENUM(State)

    static constexpr int64_t kDefaultCacheBytes = 64 * 1024 * 1024;

    explicit ThumbnailModel(QObject *parent = nullptr);
    ~ThumbnailModel() override;

    /// Shows `sampleRows` (rows into index->samples, e.g. one class or all) in that order. Rows out
    /// of range are dropped. Queued thumbnail requests are cancelled; a different index also
    /// empties the cache and forgets the failures.
    void setDataset(IndexPtr index, std::vector<int> sampleRows);
    /// Shows nothing and empties the cache.
    void clear();
    IndexPtr dataset() const { return m_index; }

    /// The rows of index->samples that belong to `classIndex`, or all of them for -1.
    static std::vector<int> sampleRowsOfClass(const ImageFolderIndex &index, int classIndex);

    /// Row into ImageFolderIndex::samples for a model index; -1 when invalid.
    int sampleRow(const QModelIndex &index) const;
    /// Model index showing that sample, or an invalid one (a linear search).
    QModelIndex indexForSampleRow(int sampleRow) const;
    /// Absolute path of the file shown at `row`.
    QString absolutePath(int row) const;

    /// Longest side the thumbnails are needed at, in device pixels. Decodes are made at the next
    /// size step up (64, 96, 128, 192, 256, ...), so dragging a size slider rarely re-decodes;
    /// until the new decode arrives the older thumbnail is shown.
    void setThumbnailSize(int pixels);
    int thumbnailSize() const { return m_decodeSize; }

    /// Bytes the thumbnail cache may hold (grown on its own when a screenful would not fit).
    void setCacheLimit(int64_t bytes);
    int64_t cacheLimit() const { return m_cacheLimit; }

    /// Called by the view once scrolling settles: rows [first, last] are decoded first, then
    /// [prefetchFirst, prefetchLast]; every other queued request is cancelled.
    void prioritizeRows(int first, int last, int prefetchFirst = -1, int prefetchLast = -1);

    ThumbnailLoader *loader() const { return m_loader; }

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

private:
    struct Thumbnail
    {
        QPixmap pixmap;
        int decodeSize = 0;
    };

    const Sample *sampleAt(int row) const;
    void requestThumbnail(const QString &path, int row) const;
    void handleReady(const QString &path, const QImage &image);
    void handleFailed(const QString &path, const QString &message);
    void notifyRows(const QString &path);
    QPixmap placeholder(State state) const;
    void ensureCacheFits(int thumbnails);

    ThumbnailLoader *m_loader = nullptr;
    IndexPtr m_index;
    std::vector<int> m_rows;
    int m_decodeSize = 0;
    int64_t m_cacheLimit = kDefaultCacheBytes;
    mutable QCache<QString, Thumbnail> m_cache;
    QHash<QString, QString> m_failures;
    // Rows waiting for a requested path: filled by data(), so only what was painted is hashed.
    mutable QHash<QString, QList<int>> m_waitingRows;
    mutable QPixmap m_pendingPixmap;
    mutable QPixmap m_failedPixmap;
};

} // namespace ifs

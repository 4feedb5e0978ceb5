#pragma once

#include "training/evaluation.h"

#include <QAbstractListModel>
#include <QCache>
#include <QHash>
#include <QPixmap>
#include <QSize>
#include <QStringList>

namespace ifs {

class ThumbnailLoader;

/// Images with what a model made of them, as a thumbnail gallery: "Sandal → Sneaker (p=0.93)".
/// Thumbnails come from a ThumbnailLoader (requested when a row is first shown, never decoded
/// in data()) and are cached as pixmaps.
class PredictionListModel : public QAbstractListModel
{
    Q_OBJECT

public:
    enum Role { PathRole = Qt::UserRole + 1, LossRole, ConfidenceRole, CorrectRole };

    explicit PredictionListModel(ThumbnailLoader *loader, QObject *parent = nullptr);

    void setPredictions(const QList<SamplePrediction> &predictions, const QStringList &classes);
    void clear();
    const QList<SamplePrediction> &predictions() const { return m_predictions; }
    /// Pixel size of the thumbnails shown (small images are enlarged without smoothing).
    void setIconSize(int pixels);
    int iconSize() const { return m_iconSize; }
    /// The size every item reports (Qt::SizeHintRole), for views with uniform item sizes.
    void setItemSize(const QSize &size) { m_itemSize = size; }
    /// "Sandal → Sneaker (p=0.93)"
    QString caption(const SamplePrediction &prediction) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;

private:
    void onThumbnail(const QString &path, const QImage &image);
    QString className(int index) const;

    ThumbnailLoader *m_loader;
    QList<SamplePrediction> m_predictions;
    QStringList m_classes;
    QHash<QString, QList<int>> m_rowsOfPath;
    mutable QCache<QString, QPixmap> m_pixmaps;
    QPixmap m_placeholder;
    int m_iconSize = 96;
    QSize m_itemSize;
};

} // namespace ifs

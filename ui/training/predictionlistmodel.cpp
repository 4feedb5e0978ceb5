#include "training/predictionlistmodel.h"

#include "common/pixmaps.h"
#include "common/thumbnailloader.h"

#include <QDir>
#include <QPainter>

namespace ifs {

PredictionListModel::PredictionListModel(ThumbnailLoader *loader, QObject *parent)
    : QAbstractListModel(parent)
    , m_loader(loader)
{
    m_pixmaps.setMaxCost(4000);
    setIconSize(m_iconSize);
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this, &PredictionListModel::onThumbnail);
}

void PredictionListModel::setIconSize(int pixels)
{
    beginResetModel();
    m_iconSize = pixels;
    m_pixmaps.clear();
    m_placeholder = QPixmap(pixels, pixels);
    m_placeholder.fill(Qt::transparent);
    QPainter painter(&m_placeholder);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);
    painter.setBrush(QColor(128, 128, 128, 40));
    painter.drawRoundedRect(QRectF(4, 4, pixels - 8, pixels - 8), 6, 6);
    endResetModel();
}

void PredictionListModel::setPredictions(const QList<SamplePrediction> &predictions,
                                         const QStringList &classes)
{
    beginResetModel();
    m_predictions = predictions;
    m_classes = classes;
    m_rowsOfPath.clear();
    for (int row = 0; row < m_predictions.size(); ++row)
        m_rowsOfPath[m_predictions[row].path].append(row);
    endResetModel();
}

void PredictionListModel::clear()
{
    setPredictions({}, {});
}

QString PredictionListModel::className(int index) const
{
    return index >= 0 && index < m_classes.size() ? m_classes[index] : QString::number(index);
}

QString PredictionListModel::caption(const SamplePrediction &prediction) const
{
    if (prediction.correct())
        return tr("%1 ✓\n(p=%2)")
            .arg(className(prediction.label))
            .arg(prediction.confidence, 0, 'f', 2);
    return tr("%1 → %2\n(p=%3)")
        .arg(className(prediction.label), className(prediction.predicted))
        .arg(prediction.confidence, 0, 'f', 2);
}

int PredictionListModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_predictions.size());
}

QVariant PredictionListModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const SamplePrediction &prediction = m_predictions[index.row()];
    switch (role) {
    case Qt::DisplayRole:
        return caption(prediction);
    case Qt::DecorationRole:
        if (const QPixmap *pixmap = m_pixmaps.object(prediction.path))
            return *pixmap;
        // Decoded on the loader's threads; dataChanged() follows.
        m_loader->request(prediction.path);
        return m_placeholder;
    case Qt::SizeHintRole:
        return m_itemSize.isValid() ? QVariant(m_itemSize) : QVariant();
    case Qt::ToolTipRole:
        return tr("%1\ntrue: %2 (p=%3)\npredicted: %4 (p=%5)\nloss: %6")
            .arg(QDir::toNativeSeparators(prediction.path), className(prediction.label))
            .arg(prediction.labelProbability, 0, 'f', 3)
            .arg(className(prediction.predicted))
            .arg(prediction.confidence, 0, 'f', 3)
            .arg(prediction.loss, 0, 'f', 3);
    case PathRole:
        return prediction.path;
    case LossRole:
        return prediction.loss;
    case ConfidenceRole:
        return prediction.confidence;
    case CorrectRole:
        return prediction.correct();
    default:
        return {};
    }
}

void PredictionListModel::onThumbnail(const QString &path, const QImage &image)
{
    const auto it = m_rowsOfPath.constFind(path);
    if (it == m_rowsOfPath.cend())
        return;
    m_pixmaps.insert(path, new QPixmap(fittedPixmap(image, m_iconSize)));
    for (int row : *it)
        Q_EMIT dataChanged(index(row), index(row), {Qt::DecorationRole});
}

} // namespace ifs

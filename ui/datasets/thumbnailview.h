#pragma once

#include "datasets/thumbnailmodel.h"

#include <QList>
#include <QListView>
#include <QPointer>
#include <QTimer>

#include <utility>

namespace ifs {

/// A grid of thumbnails for a ThumbnailModel, fluid with 100k images.
///
/// Once scrolling or resizing settles (a short single-shot timer) the view asks the model to
/// decode the visible rows first and one screen ahead in the scroll direction, and to cancel every
/// other queued request; the model's cache evicts what is far away.
class ThumbnailView : public QListView
{
    Q_OBJECT

public:
    static constexpr int kDefaultThumbnailSize = 128;
    static constexpr int kMinThumbnailSize = 32;
    static constexpr int kMaxThumbnailSize = 512;
    /// How long scrolling must pause before the visible range is prioritised.
    static constexpr int kSettleMs = 60;

    explicit ThumbnailView(QWidget *parent = nullptr);
    ~ThumbnailView() override;

    /// Expects a ThumbnailModel (other models are shown, without prioritised loading).
    void setModel(QAbstractItemModel *model) override;
    ThumbnailModel *thumbnailModel() const { return m_thumbnailModel; }

    /// Edge of the square thumbnail box in logical pixels, clamped to [32, 512].
    void setThumbnailSize(int pixels);
    int thumbnailSize() const { return m_thumbnailSize; }

    /// Text shown in the middle of the view when the model has no rows.
    void setEmptyText(const QString &text);
    QString emptyText() const { return m_emptyText; }

    /// Sample row (into ImageFolderIndex::samples) of the current item; -1 when none.
    int currentSampleRow() const { return m_currentSampleRow; }
    /// Makes the item showing `sampleRow` current, selected and visible; false if it is not shown.
    bool setCurrentSampleRow(int sampleRow);
    /// Sample rows of the selected items, in view order.
    QList<int> selectedSampleRows() const;

    /// First and last model row (partly) visible in the viewport, {-1, -1} when none.
    std::pair<int, int> visibleRowRange();
    /// Whether a scroll or resize is waiting to settle before the visible range is prioritised.
    bool isSettling() const { return m_settleTimer.isActive(); }

Q_SIGNALS:
    /// The current item changed; -1 when there is none (also after the model is reset).
    void currentSampleChanged(int sampleRow);
    /// Double-click or Enter on an item.
    void sampleActivated(int sampleRow);

public Q_SLOTS:
    void reset() override;

protected:
    void currentChanged(const QModelIndex &current, const QModelIndex &previous) override;
    void scrollContentsBy(int dx, int dy) override;
    void resizeEvent(QResizeEvent *event) override;
    void showEvent(QShowEvent *event) override;
    void paintEvent(QPaintEvent *event) override;

private:
    void scheduleVisibleUpdate();
    void prioritizeVisible();
    void updateCurrentSample(int sampleRow);
    void restoreAnchor();
    int sampleRowOf(const QModelIndex &index) const;

    class Delegate;
    Delegate *m_delegate = nullptr;
    QPointer<ThumbnailModel> m_thumbnailModel; // the model may go first
    QTimer m_settleTimer;
    int m_thumbnailSize = kDefaultThumbnailSize;
    int m_currentSampleRow = -1;
    int m_lastScrollValue = 0;
    bool m_scrollingBack = false;
    int m_anchorRow = -1; // kept in view across a thumbnail size change
    bool m_anchorIsCurrent = false;
    QList<QMetaObject::Connection> m_modelConnections;
    QString m_emptyText;
};

} // namespace ifs

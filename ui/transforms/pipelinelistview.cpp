#include "transforms/pipelinelistview.h"

#include "transforms/pipelinemodel.h"
#include "transforms/stepdelegate.h"

#include <QCursor>
#include <QDrag>
#include <QDropEvent>
#include <QKeyEvent>

namespace ifs {

PipelineListView::PipelineListView(QWidget *parent)
    : QListView(parent)
{
    setSelectionMode(QAbstractItemView::SingleSelection);
    setDragEnabled(true);
    setAcceptDrops(true);
    setDropIndicatorShown(true);
    setDragDropMode(QAbstractItemView::InternalMove);
    setDefaultDropAction(Qt::MoveAction);
    setItemDelegate(new StepDelegate(this));
    setUniformItemSizes(true);
    setEditTriggers(QAbstractItemView::NoEditTriggers);
}

void PipelineListView::keyPressEvent(QKeyEvent *event)
{
    if (event->matches(QKeySequence::Delete) || event->key() == Qt::Key_Backspace) {
        Q_EMIT removeRequested();
        return;
    }
    if (event->modifiers() & Qt::ControlModifier) {
        if (event->key() == Qt::Key_Up) {
            Q_EMIT moveRequested(-1);
            return;
        }
        if (event->key() == Qt::Key_Down) {
            Q_EMIT moveRequested(1);
            return;
        }
    }
    if (event->key() == Qt::Key_Insert) {
        Q_EMIT addRequested();
        return;
    }
    if (event->key() == Qt::Key_Space && currentIndex().isValid()) {
        const QModelIndex current = currentIndex();
        const bool enabled = current.data(PipelineModel::EnabledRole).toBool();
        model()->setData(current, enabled ? Qt::Unchecked : Qt::Checked, Qt::CheckStateRole);
        return;
    }
    QListView::keyPressEvent(event);
}

void PipelineListView::startDrag(Qt::DropActions supportedActions)
{
    Q_UNUSED(supportedActions);
    const QModelIndex current = currentIndex();
    if (!current.isValid())
        return;
    auto *drag = new QDrag(this);
    drag->setMimeData(model()->mimeData({current}));
    const QRect rect = visualRect(current);
    drag->setPixmap(viewport()->grab(rect));
    drag->setHotSpot(viewport()->mapFromGlobal(QCursor::pos()) - rect.topLeft());
    // The drop moves the row itself; nothing is removed afterwards, whatever exec() returns.
    drag->exec(Qt::MoveAction, Qt::MoveAction);
}

void PipelineListView::dropEvent(QDropEvent *event)
{
    auto *pipeline = qobject_cast<PipelineModel *>(model());
    if (event->source() != this || !pipeline || !currentIndex().isValid()) {
        event->ignore();
        return;
    }
    const QPoint pos = event->position().toPoint();
    const QModelIndex target = indexAt(pos);
    int before = pipeline->rowCount();
    if (target.isValid()) {
        const QRect rect = visualRect(target);
        before = pos.y() < rect.center().y() ? target.row() : target.row() + 1;
    }
    const int from = currentIndex().row();
    const int to = before > from ? before - 1 : before;
    if (to != from && pipeline->moveStep(from, to))
        setCurrentIndex(pipeline->index(to));
    event->setDropAction(Qt::MoveAction);
    event->accept();
    setState(NoState);
    viewport()->update();
}

} // namespace ifs

#include "transforms/clickfilter.h"

#include <QEvent>
#include <QMouseEvent>

#include <utility>

namespace ifs {

ClickFilter::ClickFilter(QObject *parent, std::function<void()> onClick)
    : QObject(parent)
    , m_onClick(std::move(onClick))
{ }

bool ClickFilter::eventFilter(QObject *watched, QEvent *event)
{
    if (event->type() == QEvent::MouseButtonRelease
        && static_cast<QMouseEvent *>(event)->button() == Qt::LeftButton)
        m_onClick();
    return QObject::eventFilter(watched, event);
}

} // namespace ifs

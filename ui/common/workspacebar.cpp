#include "common/workspacebar.h"

#include <QAbstractButton>
#include <QButtonGroup>
#include <QToolButton>
#include <QVBoxLayout>

namespace ifs {

WorkspaceBar::WorkspaceBar(QWidget *parent)
    : QWidget(parent)
    , m_group(new QButtonGroup(this))
    , m_layout(new QVBoxLayout(this))
{
    setObjectName(QStringLiteral("workspaceBar"));
    setAttribute(Qt::WA_StyledBackground);
    // Every button has the 3 px left border that marks the current one, transparent while it
    // is not: a button's size hint is taken in whatever state it has then and kept, so a border
    // only when checked would take 3 px from the label and elide it ("Chec…ints").
    setStyleSheet(QStringLiteral(
        "QWidget#workspaceBar { background: #2b2f36; }"
        "QWidget#workspaceBar QToolButton { color: #c9ced6; border: none;"
        "  border-left: 3px solid transparent; padding: 8px 4px; font-size: 11px; }"
        "QWidget#workspaceBar QToolButton:hover { background: #363b44; }"
        "QWidget#workspaceBar QToolButton:checked { background: #1f2227; color: white;"
        "  border-left-color: #4c9be8; }"));
    m_layout->setContentsMargins(0, 6, 0, 6);
    m_layout->setSpacing(2);
    m_layout->addStretch(1);
    m_group->setExclusive(true);
    connect(m_group, &QButtonGroup::idClicked, this, &WorkspaceBar::currentChanged);
}

int WorkspaceBar::addWorkspace(const QIcon &icon, const QString &title, const QString &shortcutHint)
{
    auto *button = new QToolButton(this);
    button->setIcon(icon);
    button->setIconSize(QSize(28, 28));
    button->setText(title);
    button->setToolTip(shortcutHint.isEmpty() ? title
                                              : title + QStringLiteral(" (") + shortcutHint + u')');
    button->setToolButtonStyle(Qt::ToolButtonTextUnderIcon);
    button->setCheckable(true);
    button->setFocusPolicy(Qt::NoFocus); // reached by shortcut; keeps Tab order for the content
    // Never narrower than its label, and as wide as the widest: a tool button's own policy is
    // Fixed, and a column of fixed-width buttons is only as wide as its narrowest, which elides
    // the longer labels. (An explicit minimum width would replace the size hint as the minimum
    // and let a crowded window squeeze the bar below it.)
    button->setSizePolicy(QSizePolicy::Minimum, QSizePolicy::Fixed);
    const int index = count();
    m_group->addButton(button, index);
    m_layout->insertWidget(index, button);
    if (index == 0)
        button->setChecked(true);
    return index;
}

void WorkspaceBar::setCurrentIndex(int index)
{
    if (QAbstractButton *button = m_group->button(index)) {
        button->setChecked(true);
        Q_EMIT currentChanged(index);
    }
}

int WorkspaceBar::currentIndex() const
{
    return m_group->checkedId();
}

int WorkspaceBar::count() const
{
    return int(m_group->buttons().size());
}

} // namespace ifs

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
    setStyleSheet(QStringLiteral(
        "QWidget#workspaceBar { background: #2b2f36; }"
        "QWidget#workspaceBar QToolButton { color: #c9ced6; border: none; padding: 8px 4px;"
        "  font-size: 11px; }"
        "QWidget#workspaceBar QToolButton:hover { background: #363b44; }"
        "QWidget#workspaceBar QToolButton:checked { background: #1f2227; color: white;"
        "  border-left: 3px solid #4c9be8; }"));
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
    button->setMinimumWidth(76);
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
